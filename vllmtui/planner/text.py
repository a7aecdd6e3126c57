"""The GPU reading and the memory plan as text lines, for `vllmtui gpus`, `vllmtui plan` and
the TUI's Plan view alike."""

from __future__ import annotations

from vllmtui.planner.gpu import GpuSnapshot
from vllmtui.planner.memory import Plan
from vllmtui.planner.sizing import gib
from vllmtui.planner.vllm_figures import VllmFigures


def gpu_lines(snap: GpuSnapshot) -> list[str]:
    """The reading as text (the same facts as `--json`)."""
    if not snap.ok:
        return [f"GPU: {snap.error}"]
    lines = [f"{snap.hostname}  driver {snap.driver or '?'}  {snap.summary()}"]
    for g in snap.gpus:
        if g.error:
            lines.append(f"[{g.index}] {g.name}: {g.error}")
            continue
        power = f"{g.power_draw or '?'}/{g.power_limit or '?'} W"
        lines.append(
            f"[{g.index}] {g.name:<28} {g.utilization if g.utilization is not None else '?':>3}%"
            f"  {gib(g.memory_used)} / {gib(g.memory_total)}  {g.temperature or '?'}C  {power}"
        )
        for p in g.processes:
            who = p.server and f"server {p.server}" or ("ORPHAN" if p.orphan else "not a vllmtui server")
            lines.append(f"      pid {p.pid:<8} {p.user:<10} {gib(p.memory):>11}  {who:<24} {p.command[:70]}")
    orphans = [p for p in snap.processes if p.orphan]
    if orphans:
        lines.append(f"{len(orphans)} orphaned vLLM process(es) hold GPU memory: `vllmtui reap` kills them")
    return lines


def plan_lines(plan: Plan, logged: VllmFigures | None = None, run_dir: str | None = None) -> list[str]:
    """The plan as text: estimate, and vLLM's logged figures beside it when there are some."""
    s, sh = plan.inputs, plan.shape
    lines = [
        f"plan: {plan.profile} ({plan.model})",
        f"  config:   {plan.config_source}",
        f"  model:    {sh.architecture}, {sh.kind}, {sh.layers} layers, {sh.kv_heads} KV heads x head_dim"
        f" {sh.head_dim}, {plan.params.total / 1e9:.3g} B params"
        + (f" ({plan.params.active / 1e9:.3g} B active)" if sh.experts else ""),
        f"  settings: {s.device}, dtype {plan.model_dtype}, KV {plan.kv_dtype}, TP {s.tensor_parallel}, PP"
        f" {s.pipeline_parallel}, max_model_len {plan.max_model_len:,}, max_num_seqs {plan.max_num_seqs},"
        f" block {plan.block_size}"
        + (f", gpu_memory_utilization {s.gpu_memory_utilization:g}" if s.device != "cpu" else ""),
    ]
    t = plan.target
    if s.device == "cpu":
        lines.append("  target:   CPU" + (" (KV space fixed by the profile)" if plan.budget_exact else ""))
    elif t.gpu_memory:
        lines.append(
            f"  target:   {t.name} ({gib(t.gpu_memory)} per GPU"
            + (f", {t.gpu_count} GPU(s)" if t.gpu_count else "")
            + f", {t.source})"
        )
    else:
        lines.append(f"  target:   none ({t.name})")
    have = logged is not None and (logged.kv_tokens is not None or logged.model_loading_gib is not None)
    header = f"  {'':<30} {'estimate':>16}"
    if have:
        header += f"   {'vLLM logged':>16}"
    lines.append(header)

    def row(label: str, est: str, real: str | None = None) -> None:
        text = f"  {label:<30} {est:>16}"
        if have:
            text += f"   {real or '-':>16}"
        lines.append(text)

    lg = logged or VllmFigures()
    row(
        "weights per GPU" + (" (checkpoint)" if plan.weights_exact else ""),
        gib(plan.weights_bytes),
        f"{lg.model_loading_gib:.2f} GiB" if lg.model_loading_gib is not None else None,
    )
    row("KV cache bytes per token", f"{plan.kv_bytes_per_token:,} B")
    if plan.overhead_bytes is not None:
        row("overhead (estimate)", gib(plan.overhead_bytes))
    row(
        "KV cache budget" + (" (exact)" if plan.budget_exact else ""),
        gib(plan.budget_bytes),
        f"{lg.kv_available_gib:.2f} GiB" if lg.kv_available_gib is not None else None,
    )
    row(
        "KV cache tokens",
        f"{plan.tokens:,}" if plan.tokens is not None else "-",
        f"{lg.kv_tokens:,}" if lg.kv_tokens is not None else None,
    )
    row(
        f"max concurrency @ {plan.max_model_len:,}",
        f"{plan.concurrency:.2f}x" if plan.concurrency is not None else "-",
        f"{lg.concurrency:.2f}x" if lg.concurrency is not None else None,
    )
    if have and run_dir:
        lines.append(f"  (logged: {run_dir})")
    verdict = {True: "fits", False: "DOES NOT FIT", None: "unknown (no target)"}[plan.fits]
    lines.append(
        f"  verdict:  {verdict}"
        + ("  (exactly as vLLM computes it)" if plan.exact and plan.fits is not None else "")
    )
    lines += [f"  problem:  {p}" for p in plan.problems]
    for sug in plan.suggestions:
        lines.append(f"  {'fix' if sug.fits else 'try'}:      {sug.change} -> {sug.result}")
    lines += [f"  note:     {n}" for n in plan.notes]
    return lines
