// Losses with LOOM's formulas (loomdist/losses.py), N = output values. Each entry writes the
// gradient and per-element (per-row for softmax_ce) loss terms C; reduce.wgsl sums C.
//   mse:           G = (2/N) (o - t),                     C = (o - t)^2
//   cross_entropy: G = -(t / max(o, 1e-7)) / N for t > 0,  C = t ln(clamp(o, 1e-7, 1-1e-7))
//   softmax_ce:    rows of `cols` logits z, p = softmax(z / T), G = (p sum(t) - t) / (T N),
//                  C[row] = sum t log p  (the fused softmax + cross-entropy path)

struct Elem { n: u32, two_over_n: f32, nf: f32 }
struct Rows { rows: u32, cols: u32, temperature: f32, scale: f32 }

fn linear(wg: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wg.y * nwg.x + wg.x) * 256u + lid.x;
}

@group(0) @binding(0) var<storage, read> out_e: array<f32>;
@group(0) @binding(1) var<storage, read> tgt_e: array<f32>;
@group(0) @binding(2) var<storage, read_write> g_e: array<f32>;
@group(0) @binding(3) var<storage, read_write> c_e: array<f32>;
@group(0) @binding(4) var<uniform> p_e: Elem;

@compute @workgroup_size(256)
fn mse(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear(wg, nwg, lid);
    if (i >= p_e.n) { return; }
    let d = out_e[i] - tgt_e[i];
    g_e[i] = p_e.two_over_n * d;
    c_e[i] = d * d;
}

@compute @workgroup_size(256)
fn cross_entropy(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear(wg, nwg, lid);
    if (i >= p_e.n) { return; }
    let t = tgt_e[i];
    let o = out_e[i];
    if (t > 0.0) {
        g_e[i] = (-t / max(o, 1e-7)) / p_e.nf;
        c_e[i] = t * log(clamp(o, 1e-7, 1.0 - 1e-7));
    } else {
        g_e[i] = 0.0;
        c_e[i] = 0.0;
    }
}

@group(0) @binding(0) var<storage, read> z_s: array<f32>;
@group(0) @binding(1) var<storage, read> tgt_s: array<f32>;
@group(0) @binding(2) var<storage, read_write> prob_s: array<f32>;
@group(0) @binding(3) var<storage, read_write> g_s: array<f32>;
@group(0) @binding(4) var<storage, read_write> c_s: array<f32>;
@group(0) @binding(5) var<uniform> p_s: Rows;

@compute @workgroup_size(256)
fn softmax_ce(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = linear(wg, nwg, lid);
    if (r >= p_s.rows) { return; }
    let base = r * p_s.cols;
    var m = z_s[base] / p_s.temperature;
    for (var j = 1u; j < p_s.cols; j++) { m = max(m, z_s[base + j] / p_s.temperature); }
    var se = 0.0;
    var ts = 0.0;
    for (var j = 0u; j < p_s.cols; j++) {
        se += exp(z_s[base + j] / p_s.temperature - m);
        ts += tgt_s[base + j];
    }
    let lse = log(se);
    var c = 0.0;
    for (var j = 0u; j < p_s.cols; j++) {
        let logp = z_s[base + j] / p_s.temperature - m - lse;
        let pr = exp(logp);
        let t = tgt_s[base + j];
        prob_s[base + j] = pr;
        g_s[base + j] = (pr * ts - t) * p_s.scale;
        c += t * logp;
    }
    c_s[r] = c;
}
