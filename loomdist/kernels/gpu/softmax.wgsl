// Softmax variants, forward and Jacobian-vector products. Rows are contiguous runs of `n`
// floats (row r = x[r*n .. r*n+n)). The common variants run one workgroup of 64 per row
// (strided loops, tree reductions in workgroup memory); adaptive and mixture, with their
// per-cluster scratch, run one invocation per row. Each entry point declares its own
// bindings: arrays 0..k-1 in the order the wrapper passes them, the uniform at k. Dispatches
// are 2-D past 65535 workgroups: group = x + y * nwg.x, invocation = group * 64 + lid.

const WG: u32 = 64u;
const NEG_BIG: f32 = -3.4028234e38;

// MODE of softmax_fwd: 0 plain, 1 gumbel (aux = noise, per element), 2 masked (aux = keep
// flags (n,), masked-out logits become -1e9). MASKED of softmax_bwd: zero dx where aux is 0.
override MODE: u32 = 0u;
override MASKED: u32 = 0u;

struct Rows { rows: u32, n: u32, scale: f32, pad: u32 }
struct Clusters { rows: u32, n: u32, clusters: u32, inv_t: f32 }
struct Chunks { batch: u32, m: u32, k: u32, pad: u32 }

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 { return gid.x + gid.y * nwg.x * WG; }

fn group_of(wg: vec3<u32>, nwg: vec3<u32>) -> u32 { return wg.x + wg.y * nwg.x; }

var<workgroup> red: array<f32, 64>;

// Sum / max of one value per invocation over the workgroup; the result is uniform.
fn wg_sum(v: f32, lid: u32) -> f32 {
    workgroupBarrier();
    red[lid] = v;
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        workgroupBarrier();
        if (lid < s) { red[lid] += red[lid + s]; }
    }
    return workgroupUniformLoad(&red[0]);
}

fn wg_max(v: f32, lid: u32) -> f32 {
    workgroupBarrier();
    red[lid] = v;
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        workgroupBarrier();
        if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    }
    return workgroupUniformLoad(&red[0]);
}

// ------------------------------ y = softmax(logit * scale) per row (plain, gumbel, masked)
@group(0) @binding(0) var<storage, read> sf_x: array<f32>;
@group(0) @binding(1) var<storage, read> sf_aux: array<f32>;  // noise, keep flags, or unused
@group(0) @binding(2) var<storage, read_write> sf_y: array<f32>;
@group(0) @binding(3) var<uniform> sf_p: Rows;

fn logit(base: u32, j: u32) -> f32 {
    switch MODE {
        case 1u: { return (sf_x[base + j] + sf_aux[base + j]) * sf_p.scale; }
        case 2u: { return select(-1e9, sf_x[base + j], sf_aux[j] != 0.0) * sf_p.scale; }
        default: { return sf_x[base + j] * sf_p.scale; }
    }
}

@compute @workgroup_size(64)
fn softmax_fwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) li: vec3<u32>) {
    let r = group_of(wg, nwg);
    if (r >= sf_p.rows) { return; }
    let lid = li.x;
    let base = r * sf_p.n;
    var m = NEG_BIG;
    for (var j = lid; j < sf_p.n; j += WG) { m = max(m, logit(base, j)); }
    m = wg_max(m, lid);
    var s = 0.0;
    for (var j = lid; j < sf_p.n; j += WG) {
        let e = exp(logit(base, j) - m);
        sf_y[base + j] = e;
        s += e;
    }
    let inv = 1.0 / wg_sum(s, lid);
    for (var j = lid; j < sf_p.n; j += WG) { sf_y[base + j] *= inv; }
}

// ---------------- dx = scale * y * (g - <g, y>) per row (JVP); 0 where masked out (MASKED)
@group(0) @binding(0) var<storage, read> sb_y: array<f32>;
@group(0) @binding(1) var<storage, read> sb_g: array<f32>;
@group(0) @binding(2) var<storage, read> sb_keep: array<f32>;  // (n,) keep flags, or unused
@group(0) @binding(3) var<storage, read_write> sb_dx: array<f32>;
@group(0) @binding(4) var<uniform> sb_p: Rows;

@compute @workgroup_size(64)
fn softmax_bwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) li: vec3<u32>) {
    let r = group_of(wg, nwg);
    if (r >= sb_p.rows) { return; }
    let lid = li.x;
    let base = r * sb_p.n;
    var dot = 0.0;
    for (var j = lid; j < sb_p.n; j += WG) { dot += sb_g[base + j] * sb_y[base + j]; }
    dot = wg_sum(dot, lid);
    for (var j = lid; j < sb_p.n; j += WG) {
        let d = sb_p.scale * sb_y[base + j] * (sb_g[base + j] - dot);
        sb_dx[base + j] = select(d, 0.0, MASKED != 0u && sb_keep[j] == 0.0);
    }
}

// ------------------------------------------------------------------------ sparsemax per row
// tau by Michelot's fixed point, as the CPU kernel: the support only shrinks, so at most n
// passes; y = max(0, x - tau).
@group(0) @binding(0) var<storage, read> sp_x: array<f32>;
@group(0) @binding(1) var<storage, read_write> sp_y: array<f32>;
@group(0) @binding(2) var<uniform> sp_p: Rows;

@compute @workgroup_size(64)
fn sparse_fwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) li: vec3<u32>) {
    let r = group_of(wg, nwg);
    if (r >= sp_p.rows) { return; }
    let lid = li.x;
    let base = r * sp_p.n;
    var part = 0.0;
    for (var j = lid; j < sp_p.n; j += WG) { part += sp_x[base + j]; }
    var count = sp_p.n;
    var tau = (wg_sum(part, lid) - 1.0) / f32(sp_p.n);
    for (var pass_ = 0u; pass_ <= sp_p.n; pass_++) {
        var total = 0.0;
        var kept = 0.0;
        for (var j = lid; j < sp_p.n; j += WG) {
            let v = sp_x[base + j];
            if (v > tau) { total += v; kept += 1.0; }
        }
        total = wg_sum(total, lid);
        let k = u32(wg_sum(kept, lid));  // counts below 2^24 are exact in f32
        if (k == count || k == 0u) { break; }
        count = k;
        tau = (total - 1.0) / f32(k);
    }
    for (var j = lid; j < sp_p.n; j += WG) { sp_y[base + j] = max(0.0, sp_x[base + j] - tau); }
}

// On the support S = {y > 0}: dx = g - mean_S(g); zero elsewhere
@group(0) @binding(0) var<storage, read> sq_y: array<f32>;
@group(0) @binding(1) var<storage, read> sq_g: array<f32>;
@group(0) @binding(2) var<storage, read_write> sq_dx: array<f32>;
@group(0) @binding(3) var<uniform> sq_p: Rows;

@compute @workgroup_size(64)
fn sparse_bwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) li: vec3<u32>) {
    let r = group_of(wg, nwg);
    if (r >= sq_p.rows) { return; }
    let lid = li.x;
    let base = r * sq_p.n;
    var total = 0.0;
    var count = 0.0;
    for (var j = lid; j < sq_p.n; j += WG) {
        if (sq_y[base + j] > 0.0) { total += sq_g[base + j]; count += 1.0; }
    }
    total = wg_sum(total, lid);
    count = wg_sum(count, lid);
    let mean = select(0.0, total / max(count, 1.0), count > 0.0);
    for (var j = lid; j < sq_p.n; j += WG) {
        sq_dx[base + j] = select(0.0, sq_g[base + j] - mean, sq_y[base + j] > 0.0);
    }
}

// ------------------------------------------- entmax blend: y = b / sum(b), b = (1-w) p + w s
// p = softmax(x), s = sparsemax(x) are computed first by softmax_fwd and sparse_fwd.
@group(0) @binding(0) var<storage, read> ef_p: array<f32>;
@group(0) @binding(1) var<storage, read> ef_s: array<f32>;
@group(0) @binding(2) var<storage, read_write> ef_y: array<f32>;
@group(0) @binding(3) var<storage, read_write> ef_total: array<f32>;  // (rows,)
@group(0) @binding(4) var<uniform> ef_prm: Rows;  // scale holds w = alpha - 1

@compute @workgroup_size(64)
fn entmax_fwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) li: vec3<u32>) {
    let r = group_of(wg, nwg);
    if (r >= ef_prm.rows) { return; }
    let lid = li.x;
    let base = r * ef_prm.n;
    let w = ef_prm.scale;
    var part = 0.0;
    for (var j = lid; j < ef_prm.n; j += WG) {
        let b = (1.0 - w) * ef_p[base + j] + w * ef_s[base + j];
        ef_y[base + j] = b;
        part += b;
    }
    let total = wg_sum(part, lid);
    if (lid == 0u) { ef_total[r] = total; }
    for (var j = lid; j < ef_prm.n; j += WG) { ef_y[base + j] /= total; }
}

// db = (g - <g, y>) / total; dx = (1-w) J_softmax(p) db + w J_sparsemax(s) db
@group(0) @binding(0) var<storage, read> eb_p: array<f32>;
@group(0) @binding(1) var<storage, read> eb_s: array<f32>;
@group(0) @binding(2) var<storage, read> eb_y: array<f32>;
@group(0) @binding(3) var<storage, read> eb_total: array<f32>;
@group(0) @binding(4) var<storage, read> eb_g: array<f32>;
@group(0) @binding(5) var<storage, read_write> eb_dx: array<f32>;
@group(0) @binding(6) var<uniform> eb_prm: Rows;

@compute @workgroup_size(64)
fn entmax_bwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) li: vec3<u32>) {
    let r = group_of(wg, nwg);
    if (r >= eb_prm.rows) { return; }
    let lid = li.x;
    let base = r * eb_prm.n;
    let w = eb_prm.scale;
    let inv_total = 1.0 / eb_total[r];
    var gy = 0.0;
    for (var j = lid; j < eb_prm.n; j += WG) { gy += eb_g[base + j] * eb_y[base + j]; }
    gy = wg_sum(gy, lid);
    // <db, p>, and sum/count of db over the sparsemax support
    var dp = 0.0;
    var ds = 0.0;
    var count = 0.0;
    for (var j = lid; j < eb_prm.n; j += WG) {
        let db = (eb_g[base + j] - gy) * inv_total;
        dp += db * eb_p[base + j];
        if (eb_s[base + j] > 0.0) { ds += db; count += 1.0; }
    }
    dp = wg_sum(dp, lid);
    ds = wg_sum(ds, lid);
    count = wg_sum(count, lid);
    let mean = select(0.0, ds / max(count, 1.0), count > 0.0);
    for (var j = lid; j < eb_prm.n; j += WG) {
        let db = (eb_g[base + j] - gy) * inv_total;
        let soft = eb_p[base + j] * (db - dp);
        let sparse = select(0.0, db - mean, eb_s[base + j] > 0.0);
        eb_dx[base + j] = (1.0 - w) * soft + w * sparse;
    }
}

// ---------------------------------------------- adaptive: p(i) = P(cluster) * P(i | cluster)
// cid (n,) holds each feature's cluster id as a float; pc, zc are (rows, clusters) scratch.
@group(0) @binding(0) var<storage, read> af_x: array<f32>;
@group(0) @binding(1) var<storage, read> af_cid: array<f32>;
@group(0) @binding(2) var<storage, read_write> af_y: array<f32>;
@group(0) @binding(3) var<storage, read_write> af_q: array<f32>;   // P(i | cluster)
@group(0) @binding(4) var<storage, read_write> af_pc: array<f32>;  // P(cluster)
@group(0) @binding(5) var<storage, read_write> af_zc: array<f32>;  // cluster partition sums
@group(0) @binding(6) var<uniform> af_prm: Clusters;

@compute @workgroup_size(64)
fn adaptive_fwd(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat(gid, nwg);
    if (r >= af_prm.rows) { return; }
    let base = r * af_prm.n;
    let cb = r * af_prm.clusters;
    for (var c = 0u; c < af_prm.clusters; c++) { af_pc[cb + c] = NEG_BIG; af_zc[cb + c] = 0.0; }
    for (var j = 0u; j < af_prm.n; j++) {
        let c = cb + u32(af_cid[j]);
        af_pc[c] = max(af_pc[c], af_x[base + j]);  // cluster max
    }
    for (var j = 0u; j < af_prm.n; j++) {
        let c = cb + u32(af_cid[j]);
        let e = exp(af_x[base + j] - af_pc[c]);
        af_q[base + j] = e;
        af_zc[c] += e;
    }
    for (var j = 0u; j < af_prm.n; j++) { af_q[base + j] /= af_zc[cb + u32(af_cid[j])]; }
    // cluster logits = log-sum-exp of each cluster, then softmax(logits / T) over clusters
    var m = NEG_BIG;
    for (var c = 0u; c < af_prm.clusters; c++) {
        let l = (af_pc[cb + c] + log(af_zc[cb + c])) * af_prm.inv_t;
        af_pc[cb + c] = l;
        m = max(m, l);
    }
    var s = 0.0;
    for (var c = 0u; c < af_prm.clusters; c++) {
        let e = exp(af_pc[cb + c] - m);
        af_pc[cb + c] = e;
        s += e;
    }
    for (var c = 0u; c < af_prm.clusters; c++) { af_pc[cb + c] /= s; }
    for (var j = 0u; j < af_prm.n; j++) {
        af_y[base + j] = af_pc[cb + u32(af_cid[j])] * af_q[base + j];
    }
}

// dx_i = q_i (dq_i - S[c_i]) + dl[c_i] q_i with dq = g p[c], S_c = sum_{i in c} dq_i q_i,
// gl_c = sum_{i in c} g_i q_i and dl = J_softmax(p) gl / T.
@group(0) @binding(0) var<storage, read> ab_g: array<f32>;
@group(0) @binding(1) var<storage, read> ab_cid: array<f32>;
@group(0) @binding(2) var<storage, read> ab_q: array<f32>;
@group(0) @binding(3) var<storage, read> ab_pc: array<f32>;
@group(0) @binding(4) var<storage, read_write> ab_s: array<f32>;   // (rows, clusters) scratch
@group(0) @binding(5) var<storage, read_write> ab_gl: array<f32>;  // (rows, clusters) scratch
@group(0) @binding(6) var<storage, read_write> ab_dx: array<f32>;
@group(0) @binding(7) var<uniform> ab_prm: Clusters;

@compute @workgroup_size(64)
fn adaptive_bwd(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat(gid, nwg);
    if (r >= ab_prm.rows) { return; }
    let base = r * ab_prm.n;
    let cb = r * ab_prm.clusters;
    for (var c = 0u; c < ab_prm.clusters; c++) { ab_s[cb + c] = 0.0; ab_gl[cb + c] = 0.0; }
    for (var j = 0u; j < ab_prm.n; j++) {
        let c = cb + u32(ab_cid[j]);
        let gq = ab_g[base + j] * ab_q[base + j];
        ab_s[c] += gq * ab_pc[c];
        ab_gl[c] += gq;
    }
    var dot = 0.0;
    for (var c = 0u; c < ab_prm.clusters; c++) { dot += ab_gl[cb + c] * ab_pc[cb + c]; }
    for (var c = 0u; c < ab_prm.clusters; c++) {
        ab_gl[cb + c] = ab_prm.inv_t * ab_pc[cb + c] * (ab_gl[cb + c] - dot);
    }
    for (var j = 0u; j < ab_prm.n; j++) {
        let c = cb + u32(ab_cid[j]);
        let q = ab_q[base + j];
        ab_dx[base + j] = q * (ab_g[base + j] * ab_pc[c] - ab_s[c]) + ab_gl[c] * q;
    }
}

// ---------------------------------- mixture: y[b, i] = sum_m w_m softmax(chunk m of x[b])[i]
// s (batch, M, k) is softmax_fwd over batch*M rows of k; w (M,) is normalised on the host.
@group(0) @binding(0) var<storage, read> xf_s: array<f32>;
@group(0) @binding(1) var<storage, read> xf_w: array<f32>;
@group(0) @binding(2) var<storage, read_write> xf_y: array<f32>;
@group(0) @binding(3) var<uniform> xf_prm: Chunks;

@compute @workgroup_size(64)
fn mixture_fwd(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);  // e = b * k + i
    if (e >= xf_prm.batch * xf_prm.k) { return; }
    let b = e / xf_prm.k;
    let i = e % xf_prm.k;
    var acc = 0.0;
    for (var m = 0u; m < xf_prm.m; m++) {
        acc += xf_w[m] * xf_s[(b * xf_prm.m + m) * xf_prm.k + i];
    }
    xf_y[e] = acc;
}

// One invocation per (b, m) chunk: gm = w_m g[b], dx[b, m] = s * (gm - <gm, s>)
@group(0) @binding(0) var<storage, read> xb_s: array<f32>;
@group(0) @binding(1) var<storage, read> xb_w: array<f32>;
@group(0) @binding(2) var<storage, read> xb_g: array<f32>;
@group(0) @binding(3) var<storage, read_write> xb_dx: array<f32>;
@group(0) @binding(4) var<uniform> xb_prm: Chunks;

@compute @workgroup_size(64)
fn mixture_bwd(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat(gid, nwg);  // r = b * M + m
    if (r >= xb_prm.batch * xb_prm.m) { return; }
    let wm = xb_w[r % xb_prm.m];
    let gb = (r / xb_prm.m) * xb_prm.k;
    let base = r * xb_prm.k;
    var dot = 0.0;
    for (var i = 0u; i < xb_prm.k; i++) { dot += wm * xb_g[gb + i] * xb_s[base + i]; }
    for (var i = 0u; i < xb_prm.k; i++) {
        xb_dx[base + i] = xb_s[base + i] * (wm * xb_g[gb + i] - dot);
    }
}
