"""Black-76 on a volatility smile: option marks, implied vols and greeks (pure functions).

Units follow Deribit's inverse BTC/ETH options: prices in the coin (USD value / underlying price),
IVs in percent, greeks in USD (vega per 1 vol point, theta per day, rho per 1 % rate).
"""

from __future__ import annotations

import math

YEAR_MS = 365.0 * 86_400_000.0
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / _SQRT2))


def norm_pdf(x: float) -> float:
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


def smile_vol(atm: float, forward: float, strike: float, t_years: float, skew: float, curv: float) -> float:
    """Implied vol (fraction) of a strike: an ATM term level, a linear skew and a convex smile in
    standardised log-moneyness. Bounded to [0.05, 3.0]."""
    k = math.log(strike / forward) / math.sqrt(max(t_years, 1e-6))
    k = max(-4.0, min(4.0, k))
    vol = atm * (1.0 + skew * k + curv * k * k)
    return max(0.05, min(3.0, vol))


def atm_vol(base: float, t_years: float) -> float:
    """Term structure: short expiries a bit richer than long ones."""
    return base * (1.0 + 0.25 * math.exp(-t_years * 12.0))


def black76(forward: float, strike: float, t_years: float, vol: float, is_call: bool) -> dict:
    """Undiscounted Black-76 (r = 0). Returns USD price and greeks, plus the coin price."""
    t = max(t_years, 1e-9)
    sd = vol * math.sqrt(t)
    d1 = (math.log(forward / strike) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    if is_call:
        price = forward * norm_cdf(d1) - strike * norm_cdf(d2)
        delta = norm_cdf(d1)
        rho = strike * t * norm_cdf(d2) / 100.0
    else:
        price = strike * norm_cdf(-d2) - forward * norm_cdf(-d1)
        delta = norm_cdf(d1) - 1.0
        rho = -strike * t * norm_cdf(-d2) / 100.0
    pdf = norm_pdf(d1)
    gamma = pdf / (forward * sd)
    vega = forward * pdf * math.sqrt(t) / 100.0
    theta = -forward * pdf * vol / (2.0 * math.sqrt(t)) / 365.0
    price = max(price, 0.0)
    return {
        "price_usd": price,
        "price": price / forward,
        "delta": delta,
        "gamma": gamma,
        "vega": vega,
        "theta": theta,
        "rho": rho,
    }
