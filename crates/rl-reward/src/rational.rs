//! Exact rational numbers over `i128` with checked arithmetic: what verifiers compare and the
//! expression evaluator computes with, so `3.50`, `7/2` and `3.5` are equal and no float
//! rounding ever decides a reward. Every operation that would overflow returns `None`.
//!
//! Written here rather than as `num_rational::Ratio<i128>`: its normalisation negates the
//! numerator with plain `0 - n`, so a result whose numerator is `i128::MIN` over a negative
//! denominator overflows (a panic in debug builds, a wrong sign in release). Verifiers run on
//! hostile model output and must never do either; here no part is ever `i128::MIN`.

use std::fmt;

/// A reduced fraction `num / den` with `den > 0` and `gcd(|num|, den) = 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rational {
    num: i128,
    den: i128,
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    // Callers pass values whose magnitudes fit (never i128::MIN), so abs cannot overflow.
    a = a.abs();
    b = b.abs();
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Rational {
    /// Zero.
    pub const ZERO: Self = Self { num: 0, den: 1 };

    /// `num / den` reduced; `None` when `den` is 0 or a part is `i128::MIN`.
    pub fn new(num: i128, den: i128) -> Option<Self> {
        if den == 0 || num == i128::MIN || den == i128::MIN {
            return None;
        }
        let g = gcd(num, den);
        let sign = if den < 0 { -1 } else { 1 };
        Some(Self {
            num: sign * num / g,
            den: sign * den / g,
        })
    }

    /// The integer `n`; `None` for `i128::MIN` (whose negation does not fit).
    pub fn integer(n: i128) -> Option<Self> {
        Self::new(n, 1)
    }

    /// Numerator (carries the sign).
    pub fn numer(self) -> i128 {
        self.num
    }

    /// Denominator, always positive.
    pub fn denom(self) -> i128 {
        self.den
    }

    /// Whether the value is a whole number.
    pub fn is_integer(self) -> bool {
        self.den == 1
    }

    /// The value as an integer, when it is one.
    pub fn to_integer(self) -> Option<i128> {
        self.is_integer().then_some(self.num)
    }

    /// `-self`.
    pub fn checked_neg(self) -> Option<Self> {
        Some(Self {
            num: self.num.checked_neg()?,
            den: self.den,
        })
    }

    /// `self + rhs`.
    pub fn checked_add(self, rhs: Self) -> Option<Self> {
        let g = gcd(self.den, rhs.den);
        let (a, b) = (self.den / g, rhs.den / g);
        let num = self
            .num
            .checked_mul(b)?
            .checked_add(rhs.num.checked_mul(a)?)?;
        Self::new(num, self.den.checked_mul(b)?)
    }

    /// `self - rhs`.
    pub fn checked_sub(self, rhs: Self) -> Option<Self> {
        self.checked_add(rhs.checked_neg()?)
    }

    /// `self * rhs`.
    pub fn checked_mul(self, rhs: Self) -> Option<Self> {
        // Cross-reduce first so the products stay as small as the result allows.
        let g1 = gcd(self.num, rhs.den).max(1);
        let g2 = gcd(rhs.num, self.den).max(1);
        let num = (self.num / g1).checked_mul(rhs.num / g2)?;
        let den = (self.den / g2).checked_mul(rhs.den / g1)?;
        Self::new(num, den)
    }

    /// `self / rhs`; `None` when `rhs` is zero.
    pub fn checked_div(self, rhs: Self) -> Option<Self> {
        if rhs.num == 0 {
            return None;
        }
        self.checked_mul(Self {
            num: rhs.den * rhs.num.signum(),
            den: rhs.num.checked_abs()?,
        })
    }

    /// The nearest `f64` (for logs; never for comparisons).
    pub fn to_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }
}

impl fmt::Display for Rational {
    /// `7` or `-7/2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: i128, d: i128) -> Rational {
        Rational::new(n, d).unwrap()
    }

    #[test]
    fn fractions_are_reduced_with_a_positive_denominator() {
        assert_eq!(r(6, -4), r(-3, 2));
        assert_eq!(r(-6, -4).to_string(), "3/2");
        assert_eq!(r(0, -5), Rational::ZERO);
        assert!(Rational::new(1, 0).is_none());
        assert!(Rational::new(i128::MIN, 1).is_none());
    }

    #[test]
    fn arithmetic_is_exact_and_overflow_is_none() {
        assert_eq!(r(1, 3).checked_add(r(1, 6)), Some(r(1, 2)));
        assert_eq!(r(1, 3).checked_sub(r(1, 2)), Some(r(-1, 6)));
        assert_eq!(r(2, 3).checked_mul(r(9, 4)), Some(r(3, 2)));
        assert_eq!(r(2, 3).checked_div(r(-4, 3)), Some(r(-1, 2)));
        assert_eq!(r(1, 1).checked_div(Rational::ZERO), None);
        let big = r(i128::MAX, 1);
        assert_eq!(big.checked_add(r(1, 1)), None);
        assert_eq!(big.checked_mul(r(2, 1)), None);
        assert_eq!(big.checked_mul(r(1, 2)), Some(r(i128::MAX, 2)));
        assert_eq!(big.checked_neg(), Some(r(-i128::MAX, 1)));
        // 2^127 does not fit: None, where Ratio<i128> would negate i128::MIN.
        assert_eq!(r(-(1 << 126), 1).checked_div(r(-1, 2)), None);
        assert_eq!(r(-(1 << 126), 1).checked_mul(r(2, 1)), None);
    }
}
