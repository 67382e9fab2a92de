"""Migration 0008 on a database that already has tickets: they become work orders with the same ids,
linked to their calls; new orders get fresh ids; the downgrade gives the tickets back."""

from __future__ import annotations

from datetime import timedelta

from alembic import command
from sqlalchemy import Engine, inspect, text
from sqlalchemy.orm import Session, sessionmaker

from app.db.migrate import alembic_config, upgrade
from app.db.models import WorkOrder, WorkOrderCall, WorkOrderStatus
from app.services.calls import CallRecorder

from .conftest import T0


def test_tickets_become_work_orders_and_come_back(
    db_url: str, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    command.downgrade(alembic_config(db_url), "0004")
    assert "tickets" in inspect(engine).get_table_names()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO agents (id, name, created_at) VALUES ('1001', 'Li', :t)"), {"t": T0})
        for n, call_id in enumerate(("old-1", "old-2"), start=1):
            at = T0 + timedelta(minutes=n)
            conn.execute(
                text(
                    "INSERT INTO calls (id, queue, caller_number, priority, enqueued_at, answered_at, "
                    "agent_id, outcome) VALUES (:id, 'general', :num, 0, :q, :a, '1001', 'answered')"
                ),
                {"id": call_id, "num": f"1380000000{n}", "q": at, "a": at + timedelta(seconds=5)},
            )
            conn.execute(
                text(
                    "INSERT INTO tickets (id, call_id, caller_number, queue, agent_id, enqueued_at, "
                    "answered_at, status, created_at) "
                    "VALUES (:tid, :id, :num, 'general', '1001', :q, :a, 'open', :a)"
                ),
                {
                    "tid": 10 * n,
                    "id": call_id,
                    "num": f"1380000000{n}",
                    "q": at,
                    "a": at + timedelta(seconds=5),
                },
            )
    upgrade(db_url)
    assert "tickets" not in inspect(engine).get_table_names()
    with sessions() as session:
        orders = {o.origin_call_id: o for o in session.query(WorkOrder)}
        assert {k: (o.id, o.status, o.contact_number, o.version) for k, o in orders.items()} == {
            "old-1": (10, WorkOrderStatus.open, "13800000001", 1),
            "old-2": (20, WorkOrderStatus.open, "13800000002", 1),
        }
        assert {link.call_id: link.work_order_id for link in session.query(WorkOrderCall)} == {
            "old-1": 10,
            "old-2": 20,
        }
    recorder = CallRecorder(sessions)
    recorder.call_waiting("new-1", "general", "139", 0, T0 + timedelta(hours=1))
    assert recorder.call_answered("new-1", "1001", T0 + timedelta(hours=1, seconds=3)) > 20  # no id reused

    command.downgrade(alembic_config(db_url), "0004")
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, call_id, caller_number, agent_id FROM tickets ORDER BY id")
        ).all()
    assert [tuple(r) for r in rows][:2] == [
        (10, "old-1", "13800000001", "1001"),
        (20, "old-2", "13800000002", "1001"),
    ]
    assert len(rows) == 3
    upgrade(db_url)
