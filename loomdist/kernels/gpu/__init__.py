"""GPU kernels through wgpu: `device` (adapter, limits, pipeline cache), `array` (GpuArray),
`stream` (one command encoder per step), `ops`, `losses`, `optim`, the GPU layer modules in
`layers/` and `runner` (a Network on the device). This package imports nothing heavy, so
the math plane reaches the GPU path only through `gpu_runner`."""


def gpu_runner(net):
    """Move `net`'s layers onto the wgpu device; returns the GpuRunner that now owns them.

    Raises:
        UnsupportedLayerError: a layer kind has no GPU module (names the kind).
        ConfigError: no wgpu adapter, or a buffer too large for the adapter's limits.
    """
    from loomdist.kernels.gpu.runner import GpuRunner
    return GpuRunner(net)
