"""The vendor's CPP best response through the dual of its few coupling rows.

The vendor's best response is the QP ``min C_V(x) + y·x + (rho/2)||x - z||²``. Its cost model
(:meth:`sim.agents.VendorAgent.add_block`) separates by product except for three kinds of rows:

* lane volume, per (week, lane): ``sum_k vol_k q[t, l, k] <= v1 + v2``, spare truck volume ``v1``
  (at most ``spare_volume``, at ``spare_cost`` per unit of volume) then full truckloads ``v2``
  (``truckload_cost``);
* production capacity, per (week, origin): ``sum_k p[t, o, k] <= capacity``;
* origin stock, per (origin, product): what is shipped from the stock on hand at most that stock.

With prices on those rows (``lam``: one per week and lane with spare volume, in
``[spare_cost, truckload_cost]``; lanes without spare volume cost ``truckload_cost``; ``mu >= 0``
per week and capacitated origin; ``nu >= 0`` per stocked origin and product), every unit the
vendor ships to ``(t, f, k)`` has a delivered cost ``kappa`` that is a minimum over routes (which
lane into ``f``; produced in which week ``t' <= t`` and held, or taken from stock), and the plan is
closed-form: ``x = max(0, a - kappa / rho)`` with ``a = z - (prices - wholesale) / rho``. Because the
QP is strictly convex in ``x``, *any* optimal prices give the one optimal answer, so the answer is
exact once the prices are: the work is a concave maximisation over a few hundred prices (the
dual function), however many products there are. At the ``large`` benchmark that is 204 prices
for a QP of a million variables.

The dual function is piecewise quadratic: the minimum over routes has kinks where two routes tie.
It is smoothed by a soft minimum of temperature ``eps`` (``kappa`` moves by at most ``eps`` times
the log of the number of routes) and maximised by a projected Newton method with Levenberg-Marquardt
damping within the price bounds (the Hessian is a dense matrix over the lane and capacity prices,
assembled per week and FC; stock prices, one per origin and product, are eliminated per product).
``eps`` shrinks by factors of ten from a coarse value on the first query; a later query starts from
the previous query's prices, two factors of ten above its final ``eps``. ``eps`` is set from the
answer tolerance, so that the smoothing moves the answer by at most about ``tol`` per component, and
Newton stops when its decrement bounds the remaining error of the answer by ``tol / 3`` rms (the
Lagrangian is ``rho``-strongly convex in the plan). The iteration caps of
:class:`~sim.best_response.BestResponseOptions` count Newton steps here.

What a user may do: ``negotiator_for(vendor, BestResponseOptions(vendor_solver="dual"))`` (or the
answer setting ``vendor_solver: dual``) gives this negotiator for a :class:`~sim.agents.VendorAgent`;
it answers the same queries as :class:`~sim.best_response.LPBestResponse` and offers the same
agent-side methods (``confirm``, ``own_cost``, ``dual_value``, which solve the vendor's LP).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.best_response import BestResponseOptions, LPBestResponse
from sim.lp import LPBuilder


def _softmin(c: np.ndarray, axis: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Soft minimum ``-eps log sum exp(-c/eps)`` along ``axis`` and its weights (which sum to 1).
    Entries of ``+inf`` are routes that do not exist; a slice of only ``inf`` gives ``inf``."""
    cmin = np.min(c, axis=axis, keepdims=True)
    finite = np.isfinite(cmin)
    shift = np.where(finite, cmin, 0.0)
    with np.errstate(invalid="ignore"):
        e = np.where(np.isfinite(c), np.exp(-(c - shift) / eps), 0.0)
    s = e.sum(axis=axis, keepdims=True)
    w = e / np.where(s > 0, s, 1.0)
    with np.errstate(divide="ignore"):
        value = np.where(finite, shift - eps * np.log(np.where(s > 0, s, 1.0)), np.inf)
    return value.squeeze(axis), w


class VendorDualResponse:
    """A :class:`~sim.protocol.Negotiator` for a :class:`~sim.agents.VendorAgent` that solves its
    best response through the prices of its coupling rows (see the module docstring)."""

    def __init__(self, vendor: Any, options: BestResponseOptions | None = None) -> None:
        self.options = options or BestResponseOptions()
        self._vendor = vendor
        pub = vendor.public
        data, state = vendor.cost_model()
        self.shape = tuple(pub.shape)
        H, F, K = self.shape
        self._H, self._F, self._K, self._O = H, F, K, data.O
        self._vol = np.asarray(pub.volume, dtype=float)
        self._wholesale = np.asarray(pub.wholesale, dtype=float)
        self._origin = np.asarray(data.lane_origin, dtype=np.int64)
        self._production = np.asarray(data.production, dtype=float)  # [O, K]
        self._holding = np.asarray(data.holding, dtype=float)  # [O]
        tc = np.asarray(data.truckload_cost, dtype=float)
        spare = np.asarray(data.spare_volume, dtype=float)
        sc = np.asarray(data.spare_cost, dtype=float)
        self._tc = tc
        # lanes whose spare volume can be worth using: their price is a variable in [sc, tc]
        self._S = np.flatnonzero((spare > 0) & (sc < tc))
        self._spare, self._sc = spare[self._S], sc[self._S]
        cap = np.asarray(data.capacity, dtype=float)
        self._C = np.flatnonzero(np.isfinite(cap))
        self._cap = cap[self._C]
        stock = np.asarray(state.stock, dtype=float)  # [O, K]
        self._stocked = stock > 0
        self._stock = stock[self._stocked]
        # the lanes into each FC, padded with L (a lane that does not exist)
        L = self._origin.size
        counts = np.bincount(np.asarray(data.lane_fc, dtype=np.int64), minlength=F)
        width = max(int(counts.max(initial=0)), 1)
        self._lanes_of = np.full((F, width), L, dtype=np.int64)
        for f in range(F):
            lanes = np.flatnonzero(np.asarray(data.lane_fc) == f)
            self._lanes_of[f, : lanes.size] = lanes
        self._L = L
        self._lane_to_origin = np.zeros((L, data.O))
        self._lane_to_origin[np.arange(L), self._origin] = 1.0
        weeks = np.arange(H)
        self._hold_prod = self._holding[None, None, :, None] * (weeks[:, None] - weeks[None, :])[:, :, None, None]
        self._later = (weeks[None, :] > weeks[:, None])[:, :, None, None]  # [t, t'] produced after it ships
        self._hold_stock = -self._holding[None, :, None] * (H - weeks)[:, None, None]  # [t, O, 1]
        self._routes = np.log(width) + np.log(H + 1)  # bound on the soft minimum's shift, / eps
        n_lam, n_mu, n_nu = H * self._S.size, H * self._C.size, self._stock.size
        self._split = (n_lam, n_lam + n_mu)
        self._lo = np.concatenate([np.tile(self._sc, H), np.zeros(n_mu + n_nu)])
        self._hi = np.concatenate([np.tile(tc[self._S], H), np.full(n_mu + n_nu, np.inf)])
        # where each price sits in theta (n: not a price, a dummy slot dropped from the Newton system)
        n = self._lo.size
        lam_idx = np.full((H, L + 1), n, dtype=np.int64)
        lam_idx[:, self._S] = np.arange(n_lam).reshape(H, self._S.size)
        mu_idx = np.full((H, data.O), n, dtype=np.int64)
        mu_idx[:, self._C] = n_lam + np.arange(n_mu).reshape(H, self._C.size)
        self._nu_idx = np.full((data.O, K), n, dtype=np.int64)
        self._nu_idx[self._stocked] = n_lam + n_mu + np.arange(n_nu)
        # a block (t, f) of the Hessian: the prices of the lanes into f, then mu[s, o] for every (s, o)
        self._gidx = np.concatenate([lam_idx[:, self._lanes_of], np.broadcast_to(mu_idx.ravel(), (H, F, H * data.O))], axis=2)
        exists = self._lanes_of < L
        self._slot_origin = np.where(exists, self._origin[np.minimum(self._lanes_of, L - 1)], 0)  # [F, width]
        self._slot_onehot = (exists[:, :, None] & (self._slot_origin[:, :, None] == np.arange(data.O))).astype(float)
        self._step_cap = float(np.mean(self._production) + np.max(tc, initial=0.0) * np.max(self._vol, initial=1.0))
        self._theta: np.ndarray | None = None
        self._last_query: tuple[np.ndarray, np.ndarray] | None = None
        self._lp: LPBestResponse | None = None
        self.stats: dict[str, Any] = {"queries": 0, "evaluations": 0, "inexact": 0, "last_exact": None, "n_prices": self._lo.size}

    # -- the dual function ----------------------------------------------------------------------
    def _evaluate(self, theta: np.ndarray, a: np.ndarray, rho: np.ndarray, eps: float) -> tuple[float, np.ndarray, np.ndarray]:
        """The dual function at prices ``theta``, its gradient, and the plan ``x`` it implies."""
        H, K, O = self._H, self._K, self._O
        i, j = self._split
        lam = np.broadcast_to(self._tc, (H, self._L)).copy()
        lam[:, self._S] = theta[:i].reshape(H, self._S.size)
        mu = np.zeros((H, O))
        mu[:, self._C] = theta[i:j].reshape(H, self._C.size)
        # cost of a unit at origin o in week t: produced in week t' <= t and held, or from stock
        prod = self._production[None, None, :, :] + mu[None, :, :, None] + self._hold_prod  # [t, t', O, K]
        prod = np.where(self._later, np.inf, prod)
        if self._stock.size:
            nu = np.full((O, K), np.inf)
            nu[self._stocked] = theta[j:]
            stock = np.broadcast_to(nu[None] + self._hold_stock, (H, O, K))[:, None]
            prod = np.concatenate([prod, stock], axis=1)  # source H: the stock on hand
        at_origin, w_src = _softmin(prod, 1, eps)  # [t, O, K], [t, sources, O, K]
        lane = lam[:, :, None] * self._vol[None, None, :] + at_origin[:, self._origin, :]  # [t, L, K]
        lane = np.concatenate([lane, np.full((H, 1, K), np.inf)], axis=1)
        kappa, w_lane = _softmin(lane[:, self._lanes_of, :], 2, eps)  # [t, F, K], [t, F, width, K]
        reach = np.isfinite(kappa)
        kap = np.where(reach, kappa, 0.0)
        x = np.where(reach, np.maximum(0.0, a - kap / rho), 0.0)
        phi = np.where(x > 0, kap * a - kap ** 2 / (2 * rho), rho * a ** 2 / 2)
        g = float(phi.sum() - np.sum((theta[:i].reshape(H, -1) - self._sc) * self._spare)
                  - np.sum(theta[i:j].reshape(H, -1) * self._cap) - np.sum(theta[j:] * self._stock))
        flow = x[:, :, None, :] * w_lane  # units on each lane into each FC
        units = np.zeros((H, self._L + 1, K))
        for c in range(self._lanes_of.shape[1]):  # a lane enters one FC: no repeated index but the padding
            units[:, self._lanes_of[:, c], :] += flow[:, :, c, :]
        units = units[:, : self._L]
        grad_lam = np.einsum("tlk,k->tl", units[:, self._S], self._vol) - self._spare
        need = np.einsum("tlk,lo->tok", units, self._lane_to_origin)  # units leaving each origin
        made = np.einsum("tok,tsok->sok", need, w_src[:, :H])  # produced in week s
        grad_mu = made.sum(axis=2)[:, self._C] - self._cap
        grad = [grad_lam.ravel(), grad_mu.ravel()]
        if self._stock.size:
            used = np.einsum("tok,tok->ok", need, w_src[:, H])
            grad.append(used[self._stocked] - self._stock)
        self._parts = (w_src, w_lane, x, rho)
        return g, np.concatenate(grad), x

    def _hessian(self, eps: float) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """The Hessian of the dual smoothed at ``eps``, at the prices evaluated last.

        The soft minimum over routes is ``kappa = -eps log sum_r exp(-cost_r / eps)``, each route cost
        affine in the prices (``G_r``), so ``grad kappa = sum_r p_r G_r`` and ``hess kappa =
        -(sum_r p_r G_r G_r' - grad kappa grad kappa') / eps`` with the route weights ``p_r``. The dual's
        Hessian is ``sum_i phi_i'' grad kappa_i grad kappa_i' + x_i hess kappa_i``. Every (week, FC)
        block touches the same few prices (its lanes', the origins' capacities), so it is assembled
        block by block. Returns ``A`` over the lane and capacity prices (plus a dummy last row and
        column), and with stock ``D`` ``[K, O, O]`` (stock prices of one product) and ``B``
        ``[K, O, n + 1]`` (stock prices against all others)."""
        H, F, K, O = self._H, self._F, self._K, self._O
        w_src, w_lane, x, rho = self._parts
        width = self._lanes_of.shape[1]
        n = self._lo.size
        u = np.einsum("fco,tfck->tfok", self._slot_onehot, w_lane)  # weight of each origin
        V = np.empty((H, F, K, width + H * O))  # grad kappa on a block's prices
        V[..., :width] = np.moveaxis(w_lane * self._vol, 2, 3)
        V[..., width:] = np.einsum("tfok,tsok->tfkso", u, w_src[:, :H]).reshape(H, F, K, H * O)
        coef = (x > 0) / rho - x / eps  # [t, f, k]
        blocks = -np.einsum("tfki,tfk,tfkj->tfij", V, coef, V, optimize=True)
        # sum_r p_r G_r G_r': a route is one lane slot c and one source (week s, its origin o_c)
        xv = x * self._vol
        diag = np.empty((H, F, width + H * O))
        diag[..., :width] = np.einsum("tfk,tfck->tfc", xv * self._vol, w_lane)
        diag[..., width:] = np.einsum("tfk,tfok,tsok->tfso", x, u, w_src[:, :H]).reshape(H, F, H * O)
        ii = np.arange(width + H * O)
        blocks[..., ii, ii] -= diag / eps
        w_src_slot = w_src[:, :H][:, :, self._slot_origin]  # [t, s, f, c, k]
        cross = np.einsum("tfk,tfck,tsfck->tfcs", xv, w_lane, w_src_slot) / eps
        cols = width + np.arange(H)[None, None, :] * O + self._slot_origin[:, :, None]  # [f, c, s]
        rows = np.broadcast_to(np.arange(width)[None, :, None], cols.shape)
        for f in range(F):
            np.subtract.at(blocks[:, f], (slice(None), rows[f], cols[f]), cross[:, f])
            np.subtract.at(blocks[:, f], (slice(None), cols[f], rows[f]), cross[:, f])
        A = np.zeros((n + 1, n + 1))
        g = self._gidx
        np.add.at(A, (g[..., :, None], g[..., None, :]), blocks)
        if not self._stock.size:
            return A, None, None
        g_nu = u * w_src[:, H][:, None]  # grad kappa on the stock prices nu[o, k]: [t, f, o, k]
        D = -np.einsum("tfk,tfok,tfpk->kop", coef, g_nu, g_nu)
        D[:, np.arange(O), np.arange(O)] -= np.einsum("tfk,tfok->ko", x, g_nu) / eps
        B = np.zeros((K, O, n + 1))
        for t in range(H):
            for f in range(F):
                blk = -np.einsum("k,ok,kj->koj", coef[t, f], g_nu[t, f], V[t, f])
                blk[:, :, :width] -= np.einsum("k,co,ck,ok->koc", xv[t, f], self._slot_onehot[f], w_lane[t, f], w_src[t, H]) / eps
                np.add.at(B, (slice(None), slice(None), g[t, f]), blk)
        return A, D, B

    def _newton_direction(self, grad: np.ndarray, free: np.ndarray, hessian: tuple, tau: float) -> np.ndarray:
        """The regularised Newton step ``-(H - tau |diag H|)^-1 grad`` on the ``free`` prices (zero on the
        others; ``tau`` 0 is Newton's, a large ``tau`` a scaled gradient step) for the Hessian parts
        of :meth:`_hessian`; stock prices are eliminated by a Schur complement."""
        O = self._O
        n = self._lo.size
        A, D, B = hessian
        rhs = -np.append(grad, 0.0)
        fixed = np.append(~free, True)
        dg = np.diagonal(A)
        scale = [np.abs(dg[~fixed])]
        if D is not None:
            keep = ~fixed[self._nu_idx].T  # [K, O]; prices of stock not held are fixed
            on = np.arange(O)
            scale.append(np.abs(D[:, on, on][keep]))
        scale = np.concatenate(scale)
        # damping in units of the Hessian's own diagonal, with a floor for prices of no curvature
        floor = float(np.mean(scale)) if scale.size and np.mean(scale) > 0 else 1.0
        damp = max(tau, 1e-10)
        if D is not None:
            D = np.where(keep[:, :, None] & keep[:, None, :], D, 0.0)
            dd = D[:, on, on]
            D[:, on, on] = np.where(keep, dd - damp * (np.abs(dd) + floor), -1.0)
            B = np.where(keep[:, :, None], B, 0.0)
            nu_cols = np.zeros(n + 1, dtype=bool)
            nu_cols[self._nu_idx[self._stocked]] = True
            B[:, :, nu_cols] = 0.0
            r_nu = np.where(keep, rhs[self._nu_idx].T, 0.0)  # [K, O]
            Dinv = np.linalg.inv(D)
            A = A - np.einsum("koj,kop,kpi->ji", B, Dinv, B)
            rhs = rhs - np.einsum("koj,kop,kp->j", B, Dinv, r_nu)
            fixed = fixed | nu_cols
        A = np.where(fixed[:, None] | fixed[None, :], 0.0, A)
        dg = np.diagonal(A).copy()
        A[np.arange(n + 1), np.arange(n + 1)] = np.where(fixed, -1.0, dg - damp * (np.abs(dg) + floor))
        d = np.linalg.solve(A, np.where(fixed, 0.0, rhs))
        if D is not None:
            d_nu = np.einsum("kop,kp->ko", Dinv, r_nu - np.einsum("koj,j->ko", B, d))
            d[self._nu_idx[self._stocked]] = d_nu.T[self._stocked]
        return d[:n]

    def _newton(self, theta: np.ndarray, a: np.ndarray, rho: np.ndarray, eps: float, tol: float, max_steps: int) -> tuple[np.ndarray, bool]:
        """Projected Newton ascent on the dual smoothed at ``eps``, within the price bounds, from ``theta``.

        Stops when the Newton decrement says the dual is within ``rho n (tol/3)^2 / 2`` of its maximum:
        the Lagrangian is ``rho``-strongly convex in the plan, so the plan is then within ``tol/3`` rms of
        the smoothed problem's answer. Returns the prices and whether it stopped there (not at the cap)."""
        target = float(np.min(rho)) * a.size * (tol / 3) ** 2
        near = 1e-9 + 1e-4 * np.minimum(self._hi - self._lo, 1.0)  # Bertsekas' epsilon-active bounds
        g, grad, _ = self._evaluate(theta, a, rho, eps)
        self.stats["evaluations"] += 1
        tau = 1e-6
        for _ in range(max_steps):
            held = ((theta <= self._lo + near) & (grad < 0)) | ((theta >= self._hi - near) & (grad > 0))
            hessian = self._hessian(eps)
            d = self._newton_direction(grad, ~held, hessian, 0.0)
            decrement = float(grad @ d)
            if decrement <= target and not np.any(held & ((theta > self._lo) & (theta < self._hi))):
                return theta, True
            # Levenberg-Marquardt: raise tau until the step (in the box: held prices move to their
            # bounds, and no price by more than a unit's cost) increases the dual enough, lower it after
            box_lo, box_hi = self._lo - theta, np.minimum(self._hi, theta + self._step_cap) - theta
            to_bound = np.where(grad < 0, self._lo - theta, self._hi - theta)
            accepted = False
            while tau < 1e10:
                d = d if tau == 0 else self._newton_direction(grad, ~held, hessian, tau)
                d = np.clip(np.where(held, to_bound, np.where(np.isfinite(d), d, 0.0)), box_lo, box_hi)
                trial = theta + d
                g_new, grad_new, _ = self._evaluate(trial, a, rho, eps)
                self.stats["evaluations"] += 1
                if g_new > g and g_new >= g + 1e-4 * float(grad @ d):
                    accepted = True
                    break
                tau = max(10 * tau, 1e-6)
            if not accepted:  # no ascent left that floats can see
                self._evaluate(theta, a, rho, eps)
                return theta, decrement <= 1e3 * target
            tau = tau / 10 if tau > 1e-9 else 0.0
            theta, g, grad = trial, g_new, grad_new
        return theta, False

    # -- the protocol -----------------------------------------------------------------------------
    def best_response(self, z: np.ndarray, prices: np.ndarray, rho: Any) -> np.ndarray:
        """``argmin C_V(x) + prices·x + (rho/2)||x - z||²``, within about the answer tolerance."""
        r = np.broadcast_to(np.asarray(rho, dtype=float), self.shape)
        if not np.all(r > 0):
            raise ValueError(f"rho must be positive, got {rho!r}" if np.ndim(rho) == 0 else "rho must be positive")
        z = np.asarray(z, dtype=float).reshape(self.shape)
        y = np.asarray(prices, dtype=float).reshape(self.shape)
        opt = self.options
        tol = opt.max_tol if opt.adaptive > 0 else opt.abs_tol
        if opt.adaptive > 0 and self._last_query is not None:
            z0, y0 = self._last_query
            move = float(np.sqrt(np.mean((z - z0) ** 2)) + np.sqrt(np.mean(((y - y0) / r) ** 2)))
            tol = float(np.clip(opt.adaptive * move, opt.abs_tol, opt.max_tol))
        self._last_query = (z, y)
        a = z - (y - self._wholesale[None, None, :]) / r  # the wholesale revenue is -wholesale per unit
        eps = tol * float(r.min()) / self._routes
        if self._theta is None:  # first query: from cheap prices, through coarser smoothings
            theta = self._lo.copy()
            scale = float(np.mean(self._production) + np.mean(self._tc) * np.mean(self._vol))
            for coarse in scale * 10.0 ** -np.arange(1, 8):
                if coarse <= 10 * eps:
                    break
                theta, _ = self._newton(theta, a, r, coarse, coarse * self._routes / float(r.min()), opt.max_iter)
        else:  # from the last query's prices, through two coarser smoothings
            theta = self._theta
            for coarse in (100 * eps, 10 * eps):
                theta, _ = self._newton(theta, a, r, coarse, coarse * self._routes / float(r.min()), opt.max_iter)
        early = opt.adaptive > 0 and tol >= min(opt.exact_below, opt.max_tol)
        theta, ok = self._newton(theta, a, r, eps, tol, min(opt.early_max_iter, opt.max_iter) if early else opt.max_iter)
        self._theta = theta
        _, _, x = self._evaluate(theta, a, r, eps)
        self.stats["queries"] += 1
        self.stats["last_exact"] = ok
        if not ok:
            self.stats["inexact"] += 1
        return x

    # -- agent-side methods (the vendor's LP) -----------------------------------------------------
    def _lp_response(self) -> LPBestResponse:
        if self._lp is None:
            b = LPBuilder()
            x = b.add_var(self.shape)
            self._vendor.add_block(b, x)
            self._lp = LPBestResponse(b.build(), x, self.options)
        return self._lp

    def confirm(self, x: np.ndarray) -> np.ndarray:
        """See :meth:`LPBestResponse.confirm`."""
        return self._lp_response().confirm(x)

    def own_cost(self, x: np.ndarray) -> float:
        """See :meth:`LPBestResponse.own_cost`."""
        return self._lp_response().own_cost(x)

    def dual_value(self, prices: np.ndarray) -> float:
        """See :meth:`LPBestResponse.dual_value`."""
        return self._lp_response().dual_value(prices)
