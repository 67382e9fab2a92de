"""Queueing predictions for one queue of ``n`` identical agents: Erlang C, and Erlang A with patience.

Erlang C (M/M/n): Poisson arrivals at rate ``λ``, exponential handle times of mean ``aht``, callers who
never give up. With the offered load ``A = λ·aht`` (erlangs) and ``B`` the Erlang B blocking
probability, computed by the recursion ``B(0) = 1, B(k) = A·B(k-1) / (k + A·B(k-1))`` (stable for
thousands of agents, no factorials):

    C = n·B / (n - A·(1 - B))                 probability that a caller waits
    P(wait ≤ t) = 1 - C·exp(-(n - A)·t / aht)
    ASA = C·aht / (n - A)

Erlang A (M/M/n+M) adds exponential patience of mean ``patience``. Its birth-death chain is solved
relative to the state "all agents busy, nobody waiting" (again via Erlang B for the states below), and a
caller arriving at queue position ``j`` is followed exactly: the line ahead moves at rate
``n/aht + (j-1)/patience`` while the caller gives up at ``1/patience``; the probability of being
answered within ``t`` comes from uniformization of that chain.

The service level here is the hotline's 15-second connection rate: answered within ``t`` / offered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_TAIL_EPS = 1e-15
_POISSON_EPS = 1e-13


@dataclass(frozen=True, slots=True)
class Prediction:
    agents: int
    load: float  # offered traffic in erlangs
    prob_wait: float
    service_level: float  # answered within the threshold / offered
    asa: float  # mean wait of answered calls, seconds
    abandon_rate: float  # abandoned / offered
    occupancy: float


def erlang_b(agents: int, load: float) -> float:
    b = 1.0
    for k in range(1, agents + 1):
        b = load * b / (k + load * b)
    return b


def erlang_c(agents: int, load: float) -> float:
    """Probability that a caller has to wait (1 when the agents cannot keep up)."""
    if load >= agents:
        return 1.0
    b = erlang_b(agents, load)
    return agents * b / (agents - load * (1 - b))


def predict(
    agents: int,
    calls_per_hour: float,
    aht: float,
    threshold: float = 15.0,
    patience: float | None = None,
) -> Prediction:
    """Erlang C, or Erlang A when ``patience`` (mean seconds before a waiting caller hangs up) is given."""
    if patience is not None:
        return _erlang_a(agents, calls_per_hour / 3600, aht, threshold, patience)
    load = calls_per_hour / 3600 * aht
    if load >= agents:
        return Prediction(agents, load, 1.0, 0.0, math.inf, 0.0, 1.0)
    c = erlang_c(agents, load)
    sl = 1 - c * math.exp(-(agents - load) * threshold / aht)
    return Prediction(agents, load, c, sl, c * aht / (agents - load), 0.0, load / agents)


def agents_needed(
    calls_per_hour: float,
    aht: float,
    target: float,
    threshold: float = 15.0,
    patience: float | None = None,
    limit: int = 100_000,
) -> Prediction:
    """The fewest agents whose predicted service level reaches ``target`` (a fraction)."""
    if not 0 < target < 1:
        raise ValueError("the target service level is a fraction between 0 and 1")

    def meets(n: int) -> bool:
        return predict(n, calls_per_hour, aht, threshold, patience).service_level >= target

    high = 1
    while not meets(high):
        high *= 2
        if high > limit:
            raise ValueError("no staffing up to the limit reaches the target")
    low = high // 2  # fails (or is 0)
    while high - low > 1:
        mid = (low + high) // 2
        if meets(mid):
            high = mid
        else:
            low = mid
    return predict(high, calls_per_hour, aht, threshold, patience)


def _erlang_a(agents: int, rate: float, aht: float, threshold: float, patience: float) -> Prediction:
    mu, theta, n = 1 / aht, 1 / patience, agents
    load = rate * aht
    # q[j] = P(n + j in system) / P(n in system); the states below n sum to 1/B in the same units.
    q, mass = [1.0], 1.0
    while True:
        ratio = rate / (n * mu + len(q) * theta)
        q.append(q[-1] * ratio)
        mass += q[-1]
        if ratio < 1 and q[-1] < _TAIL_EPS * mass:  # the terms shrink from here on
            break
    below = 1 / erlang_b(n, load) - 1  # states 0..n-1
    total = below + mass
    lq = sum(j * qj for j, qj in enumerate(q)) / total
    p_wait = mass / total
    # An arriving caller finding n + j - 1 in the system waits at position j (PASTA).
    w = [qj / total for qj in q]  # w[j - 1]: arrives at position j
    served = 1 - p_wait
    served_wait_sum = 0.0
    s_prev, m_prev = 1.0, 0.0  # position 0: served at once
    for j in range(1, len(w) + 1):
        ahead, out = n * mu + (j - 1) * theta, n * mu + j * theta
        s_j = ahead / out * s_prev
        m_j = ahead / out * (s_prev / out + m_prev)
        served += w[j - 1] * s_j
        served_wait_sum += w[j - 1] * m_j
        s_prev, m_prev = s_j, m_j
    within = (1 - p_wait) + _served_within(w, n * mu, theta, threshold)
    asa = served_wait_sum / served if served > 0 else math.inf
    return Prediction(
        agents=n,
        load=load,
        prob_wait=p_wait,
        service_level=within,
        asa=asa,
        abandon_rate=theta * lq / rate,
        occupancy=rate * served * aht / n,
    )


def _served_within(weights: list[float], service: float, theta: float, t: float) -> float:
    """Mass of waiting callers (``weights[j-1]`` at position ``j``) that reach an agent by ``t``.

    Uniformization: jumps at rate ``lam`` (the fastest exit rate); after each jump a caller at
    position ``j`` moves to ``j-1`` with probability ``(service + (j-1)·theta)/lam``, gives up with
    ``theta/lam``, or stays. Reaching position 0 means answered.
    """
    size = len(weights)
    lam = service + size * theta
    x = lam * t
    v = list(weights)
    served = 0.0  # answered after exactly the jumps so far
    log_p = -x  # log Poisson(m; x)
    cdf = 0.0
    result = 0.0
    m = 0
    while True:
        p = math.exp(log_p)
        result += p * served
        cdf += p
        if cdf >= 1 - _POISSON_EPS or (m > x and p < _POISSON_EPS * 1e-3):
            break
        # one jump
        nxt = [0.0] * size
        served += v[0] * service / lam
        for i in range(size):
            mass = v[i]
            if mass == 0.0:
                continue
            move = (service + i * theta) / lam  # position i + 1 moves to i
            stay = 1 - move - theta / lam
            nxt[i] += mass * stay
            if i > 0:
                nxt[i - 1] += mass * move
        v = nxt
        m += 1
        log_p += math.log(x) - math.log(m)
    return result
