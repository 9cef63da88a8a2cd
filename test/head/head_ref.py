#!/usr/bin/python3
"""PyTorch reference of the GTL head for test/head/test_head_torch.c.

Run by the C test (with Debian's /usr/bin/python3, which has python3-torch):

    /usr/bin/python3 test/head/head_ref.py IN.bin OUT.bin [float64|float32]

IN.bin, written by the C test, holds the configuration ("cfg.*"), the initial
parameters ("p0.<name>"), the batch ("x", "labels"), the reparameterisation
noise of each B1 step ("eps.b1", "eps.b1b", replayed from the model's RNG),
the C gradients of the first B1 step ("cgrad.b1.<name>", for the optimizer
check), and the parameters at the start of the later phases ("p1.<name>" after
the Adam step, "p2.<name>" after set_stage(N2)).

The phases (each starts from the C parameters of that point, so an error in
one phase does not leak into the next):
  b1   gtl_model_forward_backward in stage B1 at t = 0 (C_t = 0)
  adam gtl_model_apply with Adam (+ L2 weight decay, global-norm clipping) on
       the C gradients of b1: torch.optim.Adam + clip_grad_norm_
  b1b  a second B1 forward/backward at t = 1 with C_t > KL (the other branch
       of |KL - C_t|)
  n2   stage N2 (new classifier, encoder/estimator/generator frozen: batch
       norm on the running statistics that b1 and b1b left behind)

With "p3." records (the classification-term case of the C test) instead:
  b1c  B1 with the classification term gamma CE(classifier(z_c), y) on the
       sampled z_c ("cfg.gamma"; a fresh classifier for C classes, trained:
       BNNeck in training mode), t = 0
  n1c  N1 from the C parameters "p4." (a fresh classifier again): generator
       frozen (batch norm on the running statistics b1c left), the term, and
       C_t = min(C_max, s C_max + r_novel t / T_c) at t = 0 ("cfg.c_start")

OUT.bin holds float64 arrays: "<phase>.stats", "<phase>.grad.<name>",
"<phase>.bn.<layer>.mean|var" (running statistics after the phase),
"adam.<name>", "adam.grad_norm".

Record format (both files): u32 name length, name bytes, u32 dtype (0 f32,
1 f64, 2 i64), u64 count, count values; little endian.
"""
import struct
import sys

import torch
import torch.nn.functional as Fn

torch.set_num_threads(1)

DT_F32, DT_F64, DT_I64 = 0, 1, 2
BODY = ["encoder.fc.weight", "encoder.fc.bias", "encoder.bn.weight", "encoder.bn.bias",
        "encoder.mu.weight", "encoder.mu.bias", "encoder.logvar.weight", "encoder.logvar.bias",
        "estimator.gate.weight", "estimator.gate.bias", "estimator.adapters.weight",
        "estimator.adapters.bias", "estimator.fuse.weight", "estimator.fuse.bias",
        "generator.fc1.weight", "generator.fc1.bias", "generator.bn.weight",
        "generator.bn.bias", "generator.fc2.weight", "generator.fc2.bias"]
CLS = ["classifier.proj.weight", "classifier.bn.weight", "classifier.bn.bias",
       "classifier.fc.weight", "classifier.centers"]


def read_records(path):
    out = {}
    with open(path, "rb") as f:
        data = f.read()
    off = 0
    while off < len(data):
        (nlen,) = struct.unpack_from("<I", data, off)
        off += 4
        name = data[off:off + nlen].decode()
        off += nlen
        dtype, count = struct.unpack_from("<IQ", data, off)
        off += 12
        fmt, size = {DT_F32: ("f", 4), DT_F64: ("d", 8), DT_I64: ("q", 8)}[dtype]
        vals = struct.unpack_from("<%d%s" % (count, fmt), data, off)
        off += count * size
        out[name] = list(vals)
    return out


def write_records(path, recs):
    with open(path, "wb") as f:
        for name, vals in recs:
            vals = [float(v) for v in vals]
            b = name.encode()
            f.write(struct.pack("<I", len(b)) + b)
            f.write(struct.pack("<IQ", DT_F64, len(vals)))
            f.write(struct.pack("<%dd" % len(vals), *vals))


def sparsemax(z):
    """Sparsemax over the last dim (Martins & Astudillo 2016), autograd-friendly:
    out = max(z - tau, 0) with tau from the sorted support."""
    zs, _ = torch.sort(z, dim=-1, descending=True)
    cs = zs.cumsum(-1)
    k = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    support = (1 + k * zs) > cs
    kz = support.sum(-1, keepdim=True)
    tau = (cs.gather(-1, kz - 1) - 1) / kz.to(z.dtype)
    return torch.clamp(z - tau, min=0)


def triplet_hard_cos(f, y, margin):
    fn = f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)
    d = 1 - fn @ fn.t()
    n = f.shape[0]
    same = y[:, None] == y[None, :]
    eye = torch.eye(n, dtype=torch.bool)
    pos = same & ~eye
    neg = ~same
    inf = torch.tensor(float("inf"), dtype=f.dtype)
    dap = torch.where(pos, d, -inf).max(dim=1).values
    dan = torch.where(neg, d, inf).min(dim=1).values
    valid = pos.any(1) & neg.any(1)
    if not bool(valid.any()):
        return f.sum() * 0
    return torch.relu(dap[valid] - dan[valid] + margin).mean()


class Head:
    def __init__(self, cfg, params, dtype, bn_state=None):
        self.c = cfg
        self.dtype = dtype
        self.p = {k: torch.tensor(v, dtype=dtype).reshape(self.shape(k, len(v)))
                  .requires_grad_(True) for k, v in params.items() if k in BODY + CLS}
        if bn_state is None:
            H, F = cfg["H"], cfg["F"]
            bn_state = {}
            for layer, width in (("enc", H), ("gen", H), ("cls", F)):
                bn_state[layer] = [torch.zeros(width, dtype=dtype), torch.ones(width, dtype=dtype)]
        self.bn = bn_state

    def shape(self, name, numel):
        c = self.c
        # C from the tensor itself: p0 holds the initial 2-class classifier.
        F, H, Z, M, D, C = c["F"], c["H"], c["Nc"] + c["Nm"], c["Nm"], c["d"], numel // c["F"]
        return {
            "encoder.fc.weight": (H, F), "encoder.fc.bias": (H,), "encoder.bn.weight": (H,),
            "encoder.bn.bias": (H,), "encoder.mu.weight": (Z, H), "encoder.mu.bias": (Z,),
            "encoder.logvar.weight": (Z, H), "encoder.logvar.bias": (Z,),
            "estimator.gate.weight": (D, F), "estimator.gate.bias": (D,),
            "estimator.adapters.weight": (D, M, F), "estimator.adapters.bias": (D, M),
            "estimator.fuse.weight": (M, 2 * M), "estimator.fuse.bias": (M,),
            "generator.fc1.weight": (H, Z), "generator.fc1.bias": (H,),
            "generator.bn.weight": (H,), "generator.bn.bias": (H,),
            "generator.fc2.weight": (F, H), "generator.fc2.bias": (F,),
            "classifier.proj.weight": (F, c["Nc"]), "classifier.bn.weight": (F,),
            "classifier.bn.bias": (F,), "classifier.fc.weight": (C, F),
            "classifier.centers": (C, F),
        }[name]

    def bnorm(self, layer, h, w, b, training):
        mean, var = self.bn[layer]
        return Fn.batch_norm(h, mean, var, w, b, training=training, momentum=self.c["bn_momentum"],
                             eps=self.c["bn_eps"])

    def encode(self, x, training, eps):
        p = self.p
        h = Fn.linear(x, p["encoder.fc.weight"], p["encoder.fc.bias"])
        h = torch.relu(self.bnorm("enc", h, p["encoder.bn.weight"], p["encoder.bn.bias"],
                                  training))
        # dropout is 0 in this test
        mu = Fn.linear(h, p["encoder.mu.weight"], p["encoder.mu.bias"])
        lv = Fn.linear(h, p["encoder.logvar.weight"], p["encoder.logvar.bias"])
        z = mu + torch.exp(lv / 2) * eps if eps is not None else mu
        nc = self.c["Nc"]
        return mu, lv, z[:, :nc], z[:, nc:]

    def disturb(self, x, zm):
        if not self.c["estimator"]:
            return zm
        p = self.p
        g = sparsemax(Fn.linear(x, p["estimator.gate.weight"], p["estimator.gate.bias"]))
        u = torch.einsum("nk,kmf,nf->nm", g, p["estimator.adapters.weight"], x)
        u = u + g @ p["estimator.adapters.bias"]
        return Fn.linear(torch.cat([zm, u], 1), p["estimator.fuse.weight"],
                         p["estimator.fuse.bias"])

    def rep_cls_loss(self, x, eps, ct, y, gamma, gen_training):
        """L_rep + gamma CE(classifier(z_c), y), z_c the sampled concept."""
        p = self.p
        mu, lv, zc, zm = self.encode(x, True, eps)
        zt = self.disturb(x, zm)
        xh = self.generate(zc, zt, gen_training)
        mse = ((xh - x) ** 2).mean()
        kl = (-0.5 * (1 + lv - mu ** 2 - torch.exp(lv))).sum(1).mean()
        f = Fn.linear(zc, p["classifier.proj.weight"])
        b = self.bnorm("cls", f, p["classifier.bn.weight"], p["classifier.bn.bias"], True)
        logits = Fn.linear(b, p["classifier.fc.weight"])
        ce = Fn.cross_entropy(logits, y)
        loss = mse + self.c["beta"] * (kl - ct).abs() + gamma * ce
        acc = (logits.argmax(1) == y).to(x.dtype).mean()
        return loss, [loss, mse, kl, ct, ce, acc]

    def generate(self, zc, zt, training):
        p = self.p
        h = Fn.linear(torch.cat([zc, zt], 1), p["generator.fc1.weight"], p["generator.fc1.bias"])
        h = torch.relu(self.bnorm("gen", h, p["generator.bn.weight"], p["generator.bn.bias"],
                                  training))
        return Fn.linear(h, p["generator.fc2.weight"], p["generator.fc2.bias"])

    def rep_loss(self, x, eps, ct):
        mu, lv, zc, zm = self.encode(x, True, eps)
        zt = self.disturb(x, zm)
        xh = self.generate(zc, zt, True)
        mse = ((xh - x) ** 2).mean()
        kl = (-0.5 * (1 + lv - mu ** 2 - torch.exp(lv))).sum(1).mean()
        loss = mse + self.c["beta"] * (kl - ct).abs()
        return loss, [loss, mse, kl, ct]

    def cls_loss(self, x, y):
        p, c = self.p, self.c
        with torch.no_grad():
            mu, _, _, _ = self.encode(x, False, None)
        zc = mu[:, :c["Nc"]]
        f = Fn.linear(zc, p["classifier.proj.weight"])
        b = self.bnorm("cls", f, p["classifier.bn.weight"], p["classifier.bn.bias"], True)
        logits = Fn.linear(b, p["classifier.fc.weight"])
        ce = Fn.cross_entropy(logits, y)
        tri = triplet_hard_cos(f, y, c["margin"])
        cen = ((f - p["classifier.centers"][y]) ** 2).sum(1).mean()
        loss = c["w_ce"] * ce + c["w_tri"] * tri + c["w_cen"] * cen
        acc = (logits.argmax(1) == y).to(x.dtype).mean()
        return loss, [loss, ce, tri, cen, acc]


def main():
    inp, outp = sys.argv[1], sys.argv[2]
    dtype = torch.float64 if len(sys.argv) < 4 or sys.argv[3] == "float64" else torch.float32
    r = read_records(inp)
    cfg = {k[4:]: v[0] for k, v in r.items() if k.startswith("cfg.")}
    for k in ("F", "H", "Nc", "Nm", "d", "C", "N", "estimator"):
        cfg[k] = int(cfg[k])
    N, F, Z = cfg["N"], cfg["F"], cfg["Nc"] + cfg["Nm"]
    x = torch.tensor(r["x"], dtype=dtype).reshape(N, F)
    y = torch.tensor(r["labels"], dtype=torch.int64)
    out = []

    def params(prefix):
        return {k[len(prefix):]: v for k, v in r.items() if k.startswith(prefix)}

    def trainable_body():
        return [k for k in BODY if cfg["estimator"] or not k.startswith("estimator.")]

    def emit_bn(phase, head, layers):
        for layer in layers:
            out.append(("%s.bn.%s.mean" % (phase, layer), head.bn[layer][0].tolist()))
            out.append(("%s.bn.%s.var" % (phase, layer), head.bn[layer][1].tolist()))

    if "cfg.gamma" in r:
        rep_cls_phases(cfg, r, x, y, dtype, params, trainable_body, emit_bn, out)
        write_records(outp, out)
        return

    # ---- b1: B1 forward/backward at t = 0 ----
    head = Head(cfg, params("p0."), dtype)
    eps = torch.tensor(r["eps.b1"], dtype=dtype).reshape(N, Z)
    loss, stats = head.rep_loss(x, eps, min(cfg["c_max"], cfg["r_base"] * 0 / cfg["c_iters"]))
    loss.backward()
    out.append(("b1.stats", [float(s) for s in stats]))
    for k in trainable_body():
        out.append(("b1.grad." + k, head.p[k].grad.flatten().tolist()))
    emit_bn("b1", head, ("enc", "gen"))
    bn_after_b1 = {k: [t.clone() for t in v] for k, v in head.bn.items()}

    # ---- adam: one optimizer step on the C gradients of b1 ----
    cg = params("cgrad.b1.")
    names = trainable_body()
    ps = [torch.tensor(params("p0.")[k], dtype=dtype).requires_grad_(True) for k in names]
    for t, k in zip(ps, names):
        t.grad = torch.tensor(cg[k], dtype=dtype)
    opt = torch.optim.Adam(ps, lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["adam_eps"],
                           weight_decay=cfg["wd"], foreach=False)
    gn = torch.nn.utils.clip_grad_norm_(ps, cfg["clip"])
    # libgtl's lazy rows (docs/optimizers.md): an adapter whose gate was zero
    # for the whole batch got no gradient (its rows are exact zeros) and is
    # skipped entirely, as torch skips a parameter whose .grad is None; torch
    # updates the adapter tensor as a whole, so restore those rows after the
    # step (one step from a fresh optimizer: no state to carry).
    ad = {k: t for t, k in zip(ps, names) if k.startswith("estimator.adapters.")}
    dead = None
    if "estimator.adapters.weight" in ad:
        gw = ad["estimator.adapters.weight"].grad
        gb = ad["estimator.adapters.bias"].grad
        d = gb.numel() // int(cfg["Nm"])
        dead = (gw.reshape(d, -1) == 0).all(1) & (gb.reshape(d, -1) == 0).all(1)
        keep = {k: t.detach().clone() for k, t in ad.items()}
        print("head_ref: %d of %d adapters never active (skipped)" % (int(dead.sum()), d),
              file=sys.stderr)
    opt.step()
    if dead is not None:
        with torch.no_grad():
            for k, t in ad.items():
                t.view(d, -1)[dead] = keep[k].view(d, -1)[dead]
    out.append(("adam.grad_norm", [float(gn)]))
    for t, k in zip(ps, names):
        out.append(("adam." + k, t.detach().tolist()))

    # ---- b1b: B1 at t = 1 from the C parameters after the step ----
    head = Head(cfg, params("p1."), dtype, bn_after_b1)
    eps = torch.tensor(r["eps.b1b"], dtype=dtype).reshape(N, Z)
    ct = min(cfg["c_max"], cfg["r_base"] * 1 / cfg["c_iters"])
    loss, stats = head.rep_loss(x, eps, ct)
    loss.backward()
    out.append(("b1b.stats", [float(s) for s in stats]))
    for k in trainable_body():
        out.append(("b1b.grad." + k, head.p[k].grad.flatten().tolist()))
    emit_bn("b1b", head, ("enc", "gen"))

    # ---- n2: classifier stage on the parameters after set_stage(N2) ----
    head = Head(cfg, params("p2."), dtype, head.bn)
    loss, stats = head.cls_loss(x, y)
    loss.backward()
    out.append(("n2.stats", [float(s) for s in stats]))
    for k in CLS:
        out.append(("n2.grad." + k, head.p[k].grad.flatten().tolist()))
    emit_bn("n2", head, ("enc", "gen", "cls"))

    write_records(outp, out)


def rep_cls_phases(cfg, r, x, y, dtype, params, trainable_body, emit_bn, out):
    N, Z = cfg["N"], cfg["Nc"] + cfg["Nm"]
    gamma = cfg["gamma"]
    trained_cls = [k for k in CLS if k != "classifier.centers"]
    # ---- b1c: B1 with the classification term, t = 0 ----
    head = Head(cfg, params("p3."), dtype)
    eps = torch.tensor(r["eps.b1c"], dtype=dtype).reshape(N, Z)
    ct = min(cfg["c_max"], cfg["r_base"] * 0 / cfg["c_iters"])
    loss, stats = head.rep_cls_loss(x, eps, ct, y, gamma, True)
    loss.backward()
    out.append(("b1c.stats", [float(s) for s in stats]))
    for k in trainable_body() + trained_cls:
        out.append(("b1c.grad." + k, head.p[k].grad.flatten().tolist()))
    emit_bn("b1c", head, ("enc", "gen", "cls"))
    # ---- n1c: N1 (generator frozen) with the term and the capacity start ----
    F = cfg["F"]
    bn = {k: [t.clone() for t in v] for k, v in head.bn.items()}
    bn["cls"] = [torch.zeros(F, dtype=dtype), torch.ones(F, dtype=dtype)]
    head = Head(cfg, params("p4."), dtype, bn)
    eps = torch.tensor(r["eps.n1c"], dtype=dtype).reshape(N, Z)
    ct = min(cfg["c_max"], cfg["c_start"] * cfg["c_max"] + cfg["r_novel"] * 0 / cfg["c_iters"])
    loss, stats = head.rep_cls_loss(x, eps, ct, y, gamma, False)
    loss.backward()
    out.append(("n1c.stats", [float(s) for s in stats]))
    for k in trainable_body() + trained_cls:
        if k.startswith("generator."):
            continue
        out.append(("n1c.grad." + k, head.p[k].grad.flatten().tolist()))
    emit_bn("n1c", head, ("enc", "gen", "cls"))


if __name__ == "__main__":
    main()
