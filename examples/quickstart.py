"""fnx quickstart: the three APIs on one small problem (fitting a noisy line).

Run: python examples/quickstart.py
"""

import numpy as np

import fnx
import fnx.numpy as fnp


def main():
    # --- array ops: NumPy-style, immutable values ------------------------------------------
    key = fnx.random.key(0)
    k_x, k_noise = fnx.random.split(key)
    x = fnx.random.uniform(k_x, (256,), minval=-1.0, maxval=1.0)
    y = 3.0 * x - 0.5 + 0.1 * fnx.random.normal(k_noise, (256,))
    print(f"data: x {x.shape} {x.dtype}, y mean {fnp.mean(y).item():+.3f}")

    # --- functional transforms: grad, vmap, jit --------------------------------------------
    def loss(params, x, y):
        w, b = params
        return fnp.mean((w * x + b - y) ** 2)

    step = fnx.jit(lambda params, x, y: fnx.tree.map(
        lambda p, g: p - 0.5 * g, params, fnx.grad(loss)(params, x, y)))
    params = (fnp.asarray(0.0), fnp.asarray(0.0))
    for i in range(100):
        params = step(params, x, y)
    w, b = (p.item() for p in params)
    print(f"fitted w={w:+.3f} (true +3.000), b={b:+.3f} (true -0.500), "
          f"loss={loss(params, x, y).item():.5f}")

    per_example = fnx.vmap(fnx.grad(loss), in_axes=(None, 0, 0))(params, x[:4], y[:4])
    print("per-example dL/dw of 4 points:", np.round(per_example[0].numpy(), 4))
    print("the traced program of the loss gradient:")
    print(fnx.make_ir(fnx.grad(loss))(params, x, y))

    # --- PyTorch-style tensors ---------------------------------------------------------------
    fnx.manual_seed(0)
    t = fnx.randn(3, 4)
    t.add_(1.0)
    values, indices = fnx.max(t, 1)
    print("torch-style:", t.size(), values.shape, indices.tolist())


if __name__ == "__main__":
    main()
