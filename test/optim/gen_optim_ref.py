#!/usr/bin/python3
"""Generates test/optim/optim_ref.h: PyTorch reference values for test_optim.c.

Run with Debian's python3-torch (the pyenv `python3` on PATH has no torch):

    /usr/bin/python3 test/optim/gen_optim_ref.py > test/optim/optim_ref.h

What it records, all in float32 on the CPU, one thread:
  * trajectories: a 4-parameter model, fixed synthetic gradients (seeded
    torch.Generator), 20 steps of torch.optim.Adam / AdamW / SGD (single-tensor
    implementation, foreach off, the CPU default), with param groups
    (lr multiplier, weight decay), frozen parameters (grad None), global-norm
    clipping (torch.nn.utils.clip_grad_norm_) and the schedule
    ChainedScheduler([LinearLR, MultiStepLR]); after every step the flat
    parameters and the pre-clip gradient norm, and at the end the optimizer
    state (exp_avg, exp_avg_sq or momentum_buffer, per-parameter step);
  * clipping: clip_grad_norm_ on one gradient set, a clipping and a
    non-clipping max_norm;
  * schedules: param_group['lr'] per step for a chained LinearLR + MultiStepLR
    and for a LambdaLR with the closed-form formula (start factor 0, which
    LinearLR does not accept).

Every hyperparameter is rounded to float32 before torch sees it, so the C side
(which stores float settings) uses bit-identical values.
"""
import struct
import sys

import torch

torch.set_num_threads(1)
T = 20
NAMES = ["enc.w", "enc.b", "gen.w", "cls.w"]
SHAPES = [(3, 4), (4,), (2, 3), (5,)]
SIZES = [3 * 4, 4, 2 * 3, 5]
N = sum(SIZES)


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def cfloat(x):
    x = float(x)
    s = "%.9g" % x
    if "e" not in s and "." not in s and "inf" not in s and "nan" not in s:
        s += ".0"
    return s + "f"


def carr(vals, per_line=6, indent="    "):
    vals = [cfloat(v) for v in vals]
    lines = []
    for i in range(0, len(vals), per_line):
        lines.append(indent + ", ".join(vals[i:i + per_line]) + ",")
    return "\n".join(lines)


gen = torch.Generator().manual_seed(20241010)
P0 = (torch.randn(N, generator=gen) * 0.5).float()
# Gradients: Gaussian, scaled per step so that some steps exceed the clip
# norms used below and some do not; a few exact zeros.
scales = torch.tensor([0.15 + 0.1 * (t % 7) for t in range(T)])
G = (torch.randn(T, N, generator=gen) * scales[:, None]).float()
G[:, 5] = 0.0
G[3, :] = G[3, :] * 4.0


def split(flat):
    out, o = [], 0
    for s, shp in zip(SIZES, SHAPES):
        out.append(flat[o:o + s].reshape(shp))
        o += s
    return out


def flat_of(ts):
    return torch.cat([t.detach().reshape(-1) for t in ts])


# A case: kind, settings, groups (param -> group id, -1 = default group with
# the optimizer's settings), frozen_until (param frozen for steps < value).
CASES = [
    dict(name="adam", kind="GTL_OPTIM_ADAM", lr=0.01),
    dict(name="adam_l2", kind="GTL_OPTIM_ADAM", lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6,
         weight_decay=0.1),
    dict(name="adamw", kind="GTL_OPTIM_ADAMW", lr=0.01, weight_decay=0.1),
    dict(name="sgd", kind="GTL_OPTIM_SGD", lr=0.05),
    dict(name="sgd_momentum", kind="GTL_OPTIM_SGD", lr=0.05, momentum=0.9, weight_decay=0.01),
    dict(name="sgd_nesterov", kind="GTL_OPTIM_SGD", lr=0.05, momentum=0.9, nesterov=1,
         weight_decay=0.01),
    # Everything at once: groups (enc.* at half lr and no decay), gen.w frozen
    # throughout, clipping, warm-up and two milestones.
    dict(name="adam_full", kind="GTL_OPTIM_ADAM", lr=0.02, weight_decay=0.01, clip_norm=1.5,
         warmup_steps=5, warmup_start_factor=0.1, milestones=[8, 14], decay_gamma=0.5,
         param_group=[0, 0, -1, -1], groups=[(0.5, 0.0)], frozen_until=[0, 0, T + 1, 0]),
    # gen.w frozen for the first 10 steps, then trained: its bias correction
    # must count its own steps (torch's per-parameter state['step']).
    dict(name="adamw_unfreeze", kind="GTL_OPTIM_ADAMW", lr=0.01, weight_decay=0.05,
         clip_norm=2.0, frozen_until=[0, 0, 10, 0]),
    dict(name="sgd_full", kind="GTL_OPTIM_SGD", lr=0.1, momentum=0.8, nesterov=1,
         weight_decay=1e-3, clip_norm=1.0, warmup_steps=4, warmup_start_factor=0.25,
         milestones=[10], decay_gamma=0.2, param_group=[-1, 0, 1, -1],
         groups=[(2.0, 0.0), (0.5, 0.05)], frozen_until=[0, 0, 0, 6]),
]

DEFAULTS = dict(beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, momentum=0.0, nesterov=0,
                clip_norm=0.0, warmup_steps=0, warmup_start_factor=0.01, milestones=[],
                decay_gamma=0.1, param_group=[-1, -1, -1, -1], groups=[],
                frozen_until=[0, 0, 0, 0])


def run_case(c):
    c = {**DEFAULTS, **c}
    for k in ("lr", "beta1", "beta2", "eps", "weight_decay", "momentum", "clip_norm",
              "warmup_start_factor", "decay_gamma"):
        c[k] = f32(c[k])
    c["groups"] = [(f32(a), f32(b)) for a, b in c["groups"]]
    params = [torch.nn.Parameter(t.clone()) for t in split(P0.clone())]
    # torch param groups: one per C group plus the default group.
    tgroups = []
    default_ids = [i for i in range(4) if c["param_group"][i] < 0]
    if default_ids:
        tgroups.append(dict(params=[params[i] for i in default_ids]))
    for g, (mult, wd) in enumerate(c["groups"]):
        ids = [i for i in range(4) if c["param_group"][i] == g]
        tgroups.append(dict(params=[params[i] for i in ids], lr=c["lr"] * mult,
                            weight_decay=wd))
    if c["kind"] == "GTL_OPTIM_SGD":
        opt = torch.optim.SGD(tgroups, lr=c["lr"], momentum=c["momentum"],
                              weight_decay=c["weight_decay"], nesterov=bool(c["nesterov"]),
                              foreach=False)
    else:
        cls = torch.optim.Adam if c["kind"] == "GTL_OPTIM_ADAM" else torch.optim.AdamW
        opt = cls(tgroups, lr=c["lr"], betas=(c["beta1"], c["beta2"]), eps=c["eps"],
                  weight_decay=c["weight_decay"], foreach=False)
    scheds = []
    if c["warmup_steps"] > 0:
        scheds.append(torch.optim.lr_scheduler.LinearLR(
            opt, start_factor=c["warmup_start_factor"], end_factor=1.0,
            total_iters=c["warmup_steps"]))
    if c["milestones"]:
        scheds.append(torch.optim.lr_scheduler.MultiStepLR(opt, milestones=c["milestones"],
                                                           gamma=c["decay_gamma"]))
    sched = torch.optim.lr_scheduler.ChainedScheduler(scheds) if scheds else None

    traj, norms = [], []
    for t in range(T):
        gs = split(G[t].clone())
        for i, p in enumerate(params):
            p.grad = gs[i].clone() if t >= c["frozen_until"][i] else None
        live = [p for p in params if p.grad is not None]
        if c["clip_norm"] > 0:
            norm = torch.nn.utils.clip_grad_norm_(live, c["clip_norm"])
        else:
            norm = torch.norm(torch.stack([torch.norm(p.grad.detach(), 2.0) for p in live]), 2.0)
        norms.append(float(norm))
        opt.step()
        if sched is not None:
            sched.step()
        traj.append(flat_of(params))

    m, v, steps = [], [], []
    for p, s, fu in zip(params, SIZES, c["frozen_until"]):
        st = opt.state.get(p, {})
        if c["kind"] == "GTL_OPTIM_SGD":
            buf = st.get("momentum_buffer")
            m.append(buf.reshape(-1) if buf is not None else torch.zeros(s))
            v.append(torch.zeros(s))
        else:
            m.append(st["exp_avg"].reshape(-1) if "exp_avg" in st else torch.zeros(s))
            v.append(st["exp_avg_sq"].reshape(-1) if "exp_avg_sq" in st else torch.zeros(s))
        # SGD keeps no step count; the C side counts updates per parameter for
        # every kind, which is T - frozen_until clipped to [0, T].
        steps.append(T - min(fu, T))
    return c, traj, norms, torch.cat(m), torch.cat(v), steps


def emit_case(out, c, traj, norms, m, v, steps):
    w = out.append
    ms = c["milestones"] + [0] * (4 - len(c["milestones"]))
    gr = c["groups"] + [(0.0, 0.0)] * (4 - len(c["groups"]))
    w("    {")
    w('        .name = "%s",' % c["name"])
    w("        .kind = %s," % c["kind"])
    w("        .lr = %s, .beta1 = %s, .beta2 = %s, .eps = %s," %
      (cfloat(c["lr"]), cfloat(c["beta1"]), cfloat(c["beta2"]), cfloat(c["eps"])))
    w("        .weight_decay = %s, .momentum = %s, .nesterov = %d, .clip_norm = %s," %
      (cfloat(c["weight_decay"]), cfloat(c["momentum"]), c["nesterov"], cfloat(c["clip_norm"])))
    w("        .warmup_steps = %d, .warmup_start_factor = %s, .decay_gamma = %s," %
      (c["warmup_steps"], cfloat(c["warmup_start_factor"]), cfloat(c["decay_gamma"])))
    w("        .n_milestones = %d, .milestones = {%s}," %
      (len(c["milestones"]), ", ".join(str(x) for x in ms)))
    w("        .param_group = {%s}," % ", ".join(str(x) for x in c["param_group"]))
    w("        .n_groups = %d," % len(c["groups"]))
    w("        .group_lr_mult = {%s}," % ", ".join(cfloat(a) for a, _ in gr))
    w("        .group_wd = {%s}," % ", ".join(cfloat(b) for _, b in gr))
    w("        .frozen_until = {%s}," % ", ".join(str(x) for x in c["frozen_until"]))
    w("        .norms = {")
    w(carr(norms, indent="            "))
    w("        },")
    w("        .traj = {")
    for t in range(T):
        w("            { /* after step %d */" % t)
        w(carr(traj[t].tolist(), indent="                "))
        w("            },")
    w("        },")
    w("        .m = {")
    w(carr(m.tolist(), indent="            "))
    w("        },")
    w("        .v = {")
    w(carr(v.tolist(), indent="            "))
    w("        },")
    w("        .param_steps = {%s}," % ", ".join(str(x) for x in steps))
    w("    },")


def clip_ref():
    g_in = (G[3] * 1.0).clone()
    res = []
    for max_norm in (f32(1.0), f32(100.0)):
        ps = [torch.nn.Parameter(torch.zeros(s)) for s in SHAPES]
        for p, g in zip(ps, split(g_in.clone())):
            p.grad = g.clone()
        norm = torch.nn.utils.clip_grad_norm_(ps, max_norm)
        res.append((max_norm, float(norm), flat_of([p.grad for p in ps])))
    return g_in, res


def sched_ref():
    out = []
    # A: torch's own schedulers chained; a milestone inside the warm-up.
    lr, start, W, miles, gamma = f32(0.1), f32(0.25), 7, [5, 10, 15], f32(0.3)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sch = torch.optim.lr_scheduler.ChainedScheduler([
        torch.optim.lr_scheduler.LinearLR(opt, start_factor=start, total_iters=W),
        torch.optim.lr_scheduler.MultiStepLR(opt, milestones=miles, gamma=gamma)])
    lrs = []
    for _ in range(30):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
    out.append(("chained", lr, start, W, miles, gamma, lrs))
    # B: start factor 0 (LinearLR refuses it) and a milestone at step 0,
    # through LambdaLR with the documented closed form.
    lr, start, W, miles, gamma = f32(0.5), f32(0.0), 4, [0, 6], f32(0.5)

    def factor(k):
        f = start + (1.0 - start) * k / W if k < W else 1.0
        return f * gamma ** sum(1 for m in miles if m <= k)

    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sch = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    lrs = []
    for _ in range(30):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
    out.append(("lambda", lr, start, W, miles, gamma, lrs))
    return out


def main():
    out = []
    w = out.append
    w("/* PyTorch reference values for test_optim.c. GENERATED, do not edit:")
    w(" *   /usr/bin/python3 test/optim/gen_optim_ref.py > test/optim/optim_ref.h")
    w(" * with torch %s (Debian python3-torch), CPU, float32, one thread." % torch.__version__)
    w(" * See the generator's docstring for what each table is. */")
    w("#ifndef OPTIM_REF_H")
    w("#define OPTIM_REF_H")
    w("")
    w("#include <stdint.h>")
    w("")
    w('#include "gtl/optim.h"')
    w("")
    w("#define OREF_T %d        /* steps per trajectory */" % T)
    w("#define OREF_N_PARAMS 4")
    w("#define OREF_N %d       /* elements, parameters concatenated in order */" % N)
    w("")
    w('static const char *const oref_names[OREF_N_PARAMS] = {%s};' %
      ", ".join('"%s"' % n for n in NAMES))
    w("static const int32_t oref_nd[OREF_N_PARAMS] = {%s};" %
      ", ".join(str(len(s)) for s in SHAPES))
    w("static const int64_t oref_ne[OREF_N_PARAMS][2] = {%s};" %
      ", ".join("{%s}" % ", ".join(str(d) for d in (list(s) + [0])[:2]) for s in SHAPES))
    w("")
    w("/* Initial parameters. */")
    w("static const float oref_p0[OREF_N] = {")
    w(carr(P0.tolist()))
    w("};")
    w("")
    w("/* The gradient given at each step. */")
    w("static const float oref_grads[OREF_T][OREF_N] = {")
    for t in range(T):
        w("    {")
        w(carr(G[t].tolist(), indent="        "))
        w("    },")
    w("};")
    w("")
    w("typedef struct oref_case {")
    w("    const char *name;")
    w("    gtl_optim_kind kind;")
    w("    float lr, beta1, beta2, eps, weight_decay, momentum;")
    w("    int64_t nesterov;")
    w("    float clip_norm;")
    w("    int64_t warmup_steps;")
    w("    float warmup_start_factor, decay_gamma;")
    w("    int n_milestones;")
    w("    int64_t milestones[4];")
    w("    int param_group[OREF_N_PARAMS];   /* group id, -1: the default group */")
    w("    int n_groups;")
    w("    float group_lr_mult[4];")
    w("    float group_wd[4];")
    w("    int frozen_until[OREF_N_PARAMS];  /* frozen (grad None) for steps < this */")
    w("    float norms[OREF_T];              /* pre-clip global gradient norm per step */")
    w("    float traj[OREF_T][OREF_N];       /* parameters after each step */")
    w("    float m[OREF_N];                  /* final exp_avg / momentum_buffer (0 if none) */")
    w("    float v[OREF_N];                  /* final exp_avg_sq (0 if none) */")
    w("    int64_t param_steps[OREF_N_PARAMS]; /* updates applied to each parameter */")
    w("} oref_case;")
    w("")
    w("#define OREF_N_CASES %d" % len(CASES))
    w("static const oref_case oref_cases[OREF_N_CASES] = {")
    for c in CASES:
        emit_case(out, *run_case(c))
    w("};")
    w("")
    g_in, res = clip_ref()
    w("/* clip_grad_norm_ of oref_clip_in (parameters as above), for two max_norms. */")
    w("static const float oref_clip_in[OREF_N] = {")
    w(carr(g_in.tolist()))
    w("};")
    w("static const float oref_clip_max[2] = {%s};" % ", ".join(cfloat(r[0]) for r in res))
    w("static const float oref_clip_norm[2] = {%s};" % ", ".join(cfloat(r[1]) for r in res))
    w("static const float oref_clip_out[2][OREF_N] = {")
    for r in res:
        w("    {")
        w(carr(r[2].tolist(), indent="        "))
        w("    },")
    w("};")
    w("")
    w("/* param_group['lr'] at steps 0..29 (double in torch, printed to 17 digits). */")
    w("typedef struct oref_sched {")
    w("    const char *name;")
    w("    float lr, warmup_start_factor, decay_gamma;")
    w("    int64_t warmup_steps;")
    w("    int n_milestones;")
    w("    int64_t milestones[4];")
    w("    double lrs[30];")
    w("} oref_sched;")
    w("static const oref_sched oref_scheds[2] = {")
    for name, lr, start, W, miles, gamma, lrs in sched_ref():
        ms = miles + [0] * (4 - len(miles))
        w('    {"%s", %s, %s, %s, %d, %d, {%s},' %
          (name, cfloat(lr), cfloat(start), cfloat(gamma), W, len(miles),
           ", ".join(str(x) for x in ms)))
        w("     {")
        for i in range(0, 30, 4):
            w("         " + ", ".join("%.17g" % x for x in lrs[i:i + 4]) + ",")
        w("     }},")
    w("};")
    w("")
    w("#endif /* OPTIM_REF_H */")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
