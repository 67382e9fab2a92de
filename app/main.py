"""The FastAPI application: routers, and the contact center running beside them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI

from acd.ami import AmiLink
from agents.compliance import IncidentOpened
from app.api import (
    agent_profiles,
    agents,
    auth,
    calls,
    categories,
    compliance,
    desk,
    health,
    knowledge,
    queues,
    reports,
    supervisor,
    tickets,
    wallboard,
    work_orders,
)
from app.api import metrics as metrics_api
from app.api.deps import get_settings_dep
from app.db.engine import make_engine, session_factory
from app.db.migrate import upgrade
from app.observability.wiring import Observability
from app.security import require_jwt_secret
from app.services.agent_profiles import PinCheck
from app.services.calls import CallRecorder
from app.services.compliance import ComplianceStore
from app.services.desk import DeskHub, DeskPublisher, channel_name
from app.services.distribution import DistributionConfig, DistributionService
from app.services.journal import WriteJournal
from app.services.presence_watch import ComplianceSettings, PresenceWatch, load_busy_config
from app.services.profile_sync import ProfileSync
from app.services.routing import routing_config
from app.services.taxonomy import load as load_taxonomy
from app.services.writer import StorageWriter
from app.settings import Settings, get_settings

log = logging.getLogger(__name__)


def _link_factory(settings: Settings) -> partial[AmiLink]:
    secret = settings.ami_secret.get_secret_value() if settings.ami_secret else ""
    if not secret:
        log.error("no AMI secret configured (HOTLINE_AMI_SECRET or HOTLINE_AMI_SECRET_FILE)")
    return partial(
        AmiLink,
        host=settings.ami_host,
        port=settings.ami_port,
        username=settings.ami_username,
        secret=secret,
        ping_interval=settings.ami_ping_interval,
        ping_timeout=settings.ami_ping_timeout,
        reconnect_max_delay=settings.ami_reconnect_max_delay,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    require_jwt_secret(settings)  # refuse to start without a signing key
    routing_config(settings)  # nor with a queues file that does not parse
    busy_config = load_busy_config(ComplianceSettings().busy_reasons_file)  # nor with a bad busy config
    load_taxonomy(settings.taxonomy_file)  # nor with a bad intake taxonomy

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        upgrade(settings.database_url)
        db_engine = make_engine(settings.database_url)
        app.state.db_engine = db_engine
        app.state.session_factory = session_factory(db_engine)
        routing = routing_config(settings)
        service = DistributionService(
            DistributionConfig(
                routing.queues,
                settings.agent_context,
                settings.agent_channel_tech,
                priority_step=routing.priority_step,
                repeat_caller_seconds=settings.repeat_caller_hours * 3600,
                repeat_caller_priority=settings.repeat_caller_priority,
            ),
            _link_factory(settings),
            CallRecorder(app.state.session_factory),
            writer=StorageWriter(
                WriteJournal(settings.write_journal), shutdown_grace=settings.storage_shutdown_grace
            ),
        )
        app.state.distribution = service
        compliance_store = ComplianceStore(app.state.session_factory)
        watch = PresenceWatch(
            service, compliance_store, busy_config, login_check=PinCheck(app.state.session_factory)
        )
        app.state.presence_watch = watch
        await service.writer.replay()  # what the previous run could not write, before reading its state
        await watch.start()  # before the link: closes incidents of an earlier run, not this one's
        observability = Observability(
            settings, app.state.session_factory, service, routing.queues, watch.tracker.status
        )
        app.state.observability = observability
        observability.start()
        watch.incident_listeners.append(
            lambda i: (
                observability.metrics.record_incident(i.kind.value) if isinstance(i, IncidentOpened) else None
            )
        )
        watch.pin_failure_listeners.append(observability.metrics.record_pin_failure)
        profiles = ProfileSync(
            service, app.state.session_factory, settings.redis_url, settings.profiles_channel
        )
        await profiles.reload()  # before presence is restored: restored agents serve their own queues
        profiles.start()
        app.state.desk_hub = DeskHub(settings.redis_url, channel_name(settings))
        app.state.desk_publisher = DeskPublisher(
            service, settings, app.state.session_factory, app.state.desk_hub
        )
        app.state.desk_hub.start()
        app.state.desk_publisher.start()
        last = await asyncio.to_thread(compliance_store.last_states)
        service.restore_presence([(t.agent_id, t.to_state, t.reason, t.endpoint) for t in last])
        await watch.restored()  # an unapproved busy restored goes on as the incident it was
        await service.start()
        try:
            yield
        finally:
            await profiles.stop()
            await service.stop()
            await watch.stop()
            await observability.stop()
            await app.state.desk_publisher.stop()
            await app.state.desk_hub.stop()
            db_engine.dispose()

    app = FastAPI(
        title="12345 hotline",
        version="0.1.0",
        description="Automatic call distribution, agent presence and work orders for a citizen hotline.",
        lifespan=lifespan,
    )
    app.dependency_overrides[get_settings_dep] = lambda: settings
    for module in (
        health,
        auth,
        agents,
        agent_profiles,
        queues,
        tickets,
        work_orders,
        categories,
        knowledge,
        calls,
        reports,
        wallboard,
        metrics_api,
        compliance,
        supervisor,
        desk,
    ):
        app.include_router(module.router)
    desk.mount_page(app)
    wallboard.mount_page(app)
    return app
