// Single-workgroup reductions to one float: O[0] = (accumulate ? O[0] : 0) + scale * sum f(X).
// f is x (reduce_sum), x^2 (sumsq) or "is not finite" (nonfinite, by the exponent bits through
// bitcast<u32>, so NaN and +-Inf count and no compiler may fold a v != v test away).

const WG: u32 = 256u;

struct Red { n: u32, scale: f32, accumulate: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> o: array<f32>;
@group(0) @binding(2) var<uniform> p: Red;

var<workgroup> part: array<f32, 256>;

fn term(v: f32, kind: u32) -> f32 {
    if (kind == 1u) { return v * v; }
    if (kind == 2u) {
        return select(0.0, 1.0, (bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u);
    }
    return v;
}

fn reduce(t: u32, kind: u32) {
    var s = 0.0;
    for (var i = t; i < p.n; i += WG) { s += term(x[i], kind); }
    part[t] = s;
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        workgroupBarrier();
        if (t < stride) { part[t] += part[t + stride]; }
    }
    if (t == 0u) {
        var total = part[0] * p.scale;
        if (p.accumulate != 0u) { total += o[0]; }
        o[0] = total;
    }
}

@compute @workgroup_size(256)
fn reduce_sum(@builtin(local_invocation_id) lid: vec3<u32>) { reduce(lid.x, 0u); }

@compute @workgroup_size(256)
fn sumsq(@builtin(local_invocation_id) lid: vec3<u32>) { reduce(lid.x, 1u); }

@compute @workgroup_size(256)
fn nonfinite(@builtin(local_invocation_id) lid: vec3<u32>) { reduce(lid.x, 2u); }
