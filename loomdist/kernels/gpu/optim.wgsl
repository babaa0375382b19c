// Optimizer updates with loomdist/optim.py's formulas (LOOM's optimizer.go), in place on W.
// Host-side constants (1 - beta, bias corrections 1 - beta^t) arrive as f32, as numpy casts
// Python floats to the array dtype. What changes every step (lr, 1 - beta1^t, 1 - beta2^t)
// sits in the small storage array K = [lr, bc1, bc2], so the uniforms (and the bind groups
// over them) repeat from step to step. clip_scale applies clip_global_norm's scale from the sum
// of squares that reduce.wgsl's sumsq left in S[0].

struct Opt {
    n: u32, momentum: f32, one_minus_damp: f32, nesterov: u32,
    beta1: f32, one_minus_b1: f32, beta2: f32, one_minus_b2: f32,
    eps: f32, weight_decay: f32, decoupled: u32, decays: u32,
    alpha: f32, one_minus_alpha: f32, rms_momentum: f32,
}
struct Clip { n: u32, max_norm: f32 }

fn linear(wg: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wg.y * nwg.x + wg.x) * 256u + lid.x;
}

@group(0) @binding(0) var<storage, read_write> w: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> s1: array<f32>;
@group(0) @binding(3) var<storage, read_write> s2: array<f32>;
@group(0) @binding(4) var<storage, read> k: array<f32>;
@group(0) @binding(5) var<uniform> p: Opt;
@group(0) @binding(2) var<storage, read> k_sgd: array<f32>;
@group(0) @binding(3) var<uniform> p_sgd: Opt;
@group(0) @binding(3) var<storage, read> k_mom: array<f32>;
@group(0) @binding(4) var<uniform> p_mom: Opt;

@compute @workgroup_size(256)
fn sgd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear(wg, nwg, lid);
    if (i < p_sgd.n) { w[i] = w[i] - k_sgd[0] * g[i]; }
}

// s1 = velocity.
@compute @workgroup_size(256)
fn momentum(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear(wg, nwg, lid);
    if (i >= p_mom.n) { return; }
    let gi = g[i];
    let v = s1[i] * p_mom.momentum + p_mom.one_minus_damp * gi;
    s1[i] = v;
    var step = v;
    if (p_mom.nesterov != 0u) { step = gi + p_mom.momentum * v; }
    w[i] = w[i] - k_mom[0] * step;
}

// s1 = first moment m, s2 = second moment v.
@compute @workgroup_size(256)
fn adam(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear(wg, nwg, lid);
    if (i >= p.n) { return; }
    let wi = w[i];
    var gi = g[i];
    if (p.weight_decay != 0.0 && p.decoupled == 0u) { gi = gi + p.weight_decay * wi; }
    let m = s1[i] * p.beta1 + p.one_minus_b1 * gi;
    let v = s2[i] * p.beta2 + p.one_minus_b2 * gi * gi;
    s1[i] = m;
    s2[i] = v;
    var upd = (m / k[1]) / (sqrt(v / k[2]) + p.eps);
    if (p.decoupled != 0u && p.decays != 0u) { upd = upd + p.weight_decay * wi; }
    w[i] = wi - k[0] * upd;
}

// s1 = running mean square, s2 = momentum buffer.
@compute @workgroup_size(256)
fn rmsprop(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear(wg, nwg, lid);
    if (i >= p.n) { return; }
    let gi = g[i];
    let v = s1[i] * p.alpha + p.one_minus_alpha * gi * gi;
    s1[i] = v;
    var step = gi / sqrt(v + p.eps);
    if (p.rms_momentum > 0.0) {
        step = s2[i] * p.rms_momentum + step;
        s2[i] = step;
    }
    w[i] = w[i] - k[0] * step;
}

@group(0) @binding(0) var<storage, read_write> gc: array<f32>;
@group(0) @binding(1) var<storage, read> sq: array<f32>;
@group(0) @binding(2) var<uniform> pc: Clip;

@compute @workgroup_size(256)
fn clip_scale(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear(wg, nwg, lid);
    if (i >= pc.n) { return; }
    let norm = sqrt(sq[0]);
    if (pc.max_norm > 0.0 && norm > pc.max_norm) { gc[i] = gc[i] * (pc.max_norm / norm); }
}
