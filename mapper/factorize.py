"""Prime factors and divisors of loop bounds: the one place that factors.

A bound may be as large as 2**62 (mapper/specs/limits.py), where trial division
would take minutes (up to 2**31 steps); Miller-Rabin with a fixed set of bases
(exact for every n below 3.3e24) and Pollard's rho (Brent's variant) factor any such
bound in milliseconds.
"""

from __future__ import annotations

from functools import cache
from math import gcd, isqrt

import numpy as np

# Miller-Rabin with these bases is exact for n < 3.3e24 (Sorenson and Webster, 2015).
_BASES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)
_SMALL_PRIMES = tuple(p for p in range(2, 1000) if all(p % q for q in range(2, isqrt(p) + 1)))
_EXACT_BELOW = 3_317_044_064_679_887_385_961_981


@cache
def prime_factors(n: int) -> tuple[int, ...]:
    """The prime factors of n >= 1, smallest first, each as often as it divides n."""
    if n < 1:
        raise ValueError(f"prime factors of {n}: only positive integers have them")
    found: list[int] = []
    for p in _SMALL_PRIMES:
        while n % p == 0:
            found.append(p)
            n //= p
    stack = [n] if n > 1 else []
    while stack:
        m = stack.pop()
        if is_prime(m):
            found.append(m)
        else:
            d = _pollard_brent(m)
            stack += [d, m // d]
    return tuple(sorted(found))


@cache
def divisors(n: int) -> tuple[int, ...]:
    """Every divisor of n >= 1, ascending."""
    result = [1]
    counts: dict[int, int] = {}
    for p in prime_factors(n):
        counts[p] = counts.get(p, 0) + 1
    for p, k in counts.items():
        result = [d * p**e for d in result for e in range(k + 1)]
    return tuple(sorted(result))


def is_prime(n: int) -> bool:
    """Exact for n below 3.3e24, far beyond any bound the specs allow."""
    if n < 2:
        return False
    if n >= _EXACT_BELOW:
        raise ValueError(f"{n} is too large to test for primality exactly")
    for p in _BASES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in _BASES:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _pollard_brent(n: int) -> int:
    """A proper divisor of a composite n without factors below 1000 (Brent, 1980).
    Deterministic: the constants of the iteration are tried in order."""
    for c in range(1, n):
        y, m, g, r, q = 2, 128, 1, 1, 1
        x = ys = y
        while g == 1:
            x = y
            for _ in range(r):
                y = (y * y + c) % n
            k = 0
            while k < r and g == 1:
                ys = y
                for _ in range(min(m, r - k)):
                    y = (y * y + c) % n
                    q = q * abs(x - y) % n
                g = gcd(q, n)
                k += m
            r *= 2
        if g == n:  # the batch overshot: step back one at a time
            g = 1
            while g == 1:
                ys = (ys * ys + c) % n
                g = gcd(abs(x - ys), n)
        if g != n:
            return g
    raise ArithmeticError(f"no factor of {n} found")  # unreachable for composite n


def random_prime_factors(factors: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Per factor, one of its prime factors (1 for a factor of 1), the one that `u` (in
    [0, 1)) picks from its list with repeats, so a prime that divides it twice is
    twice as likely. Factorizes each distinct value once."""
    values, where = np.unique(factors, return_inverse=True)
    where = where.reshape(-1)
    lists = [prime_factors(value) for value in values.tolist()]
    counts = np.array([len(primes) for primes in lists], dtype=np.int64)
    table = np.ones((len(lists), max(counts.max(initial=0), 1)), dtype=np.int64)  # a row per value, 1 after
    for row, primes in enumerate(lists):
        table[row, :len(primes)] = primes
    picked = table[where, (np.ravel(u) * counts[where]).astype(np.int64)]  # a factor of 1: column 0, a 1
    return picked.reshape(np.shape(factors))
