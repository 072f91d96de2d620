"""CPU accounting the benchmarks share: what the whole machine and each server spent, to set a run's
figure beside the CPU it cost (on two cores, CPU per item bounds the rate whatever the code does)."""

from __future__ import annotations

import os
from pathlib import Path

import psutil

_TICK = os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (user, nice, system, irq, softirq): whatever ran."""
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in Path("/proc/stat").read_text().split()[1:8])
    return (user + nice + system + irq + softirq) / _TICK


def server_cpu_seconds() -> tuple[float, float]:
    """CPU seconds PostgreSQL and RabbitMQ have spent so far. A backend that has exited is counted through
    the postmaster's reaped-children times, so connections opened and closed in between are not missed."""
    postgres = rabbitmq = 0.0
    for proc in psutil.process_iter(["name"]):
        name = proc.info["name"] or ""
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        if name.startswith("postgres"):
            postgres += times.user + times.system + times.children_user + times.children_system
        elif name.startswith("beam"):
            rabbitmq += times.user + times.system
    return postgres, rabbitmq
