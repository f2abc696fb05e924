//! Small floats at the graph's edges, to and from f32 with rounding to
//! nearest even: IEEE-754 half precision and bfloat16 (NaN stays NaN,
//! overflow becomes infinity), and the four 8-bit formats of ONNX
//! ([`F8`]: saturating or not, as `Cast` says).

/// The f32 value of half-precision bits (exact).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: man · 2^-24, exact in f32.
            let v = man as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, _) => sign | 0x7fc0_0000 | (man << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// Half-precision bits of `x`, rounded to nearest even.
pub fn f32_to_f16(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let man = b & 0x7f_ffff;
    if exp == 0xff {
        // Infinity, or a quiet NaN keeping the top payload bits.
        return sign
            | 0x7c00
            | if man != 0 {
                0x200 | (man >> 13) as u16
            } else {
                0
            };
    }
    let e = exp - 127 + 15; // the half's biased exponent
    if e >= 0x1f {
        return sign | 0x7c00; // overflow
    }
    if e <= 0 {
        // Subnormal half (or zero): the significand with its implicit 1,
        // shifted into place with round-to-nearest-even.
        if e < -10 {
            return sign; // below half the smallest subnormal
        }
        let m = man | 0x80_0000;
        let shift = (14 - e) as u32; // 13 + (1 − e)
        let half = 1u32 << (shift - 1);
        let rest = m & ((1u32 << shift) - 1);
        let mut v = m >> shift;
        if rest > half || (rest == half && v & 1 == 1) {
            v += 1;
        }
        return sign | v as u16;
    }
    let rest = man & 0x1fff;
    let mut v = ((e as u32) << 10) | (man >> 13);
    if rest > 0x1000 || (rest == 0x1000 && v & 1 == 1) {
        v += 1; // may carry into the exponent, up to infinity: correct
    }
    sign | v as u16
}

/// The f32 value of bfloat16 bits (exact).
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// bfloat16 bits of `x`, rounded to nearest even.
pub fn f32_to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) as u16) | 0x40; // quiet
    }
    let round = 0x7fff + ((b >> 16) & 1);
    (b.wrapping_add(round) >> 16) as u16
}

/// An 8-bit float format of ONNX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum F8 {
    /// 4 exponent bits (bias 7), 3 mantissa bits; no infinity; NaN is
    /// `S.1111.111`; largest 448.
    E4M3Fn,
    /// 4 exponent bits (bias 8), 3 mantissa bits; no infinity, no −0; NaN
    /// is `0x80`; largest 240.
    E4M3FnUz,
    /// 5 exponent bits (bias 15), 2 mantissa bits, IEEE-like with
    /// infinities; largest 57344.
    E5M2,
    /// 5 exponent bits (bias 16), 2 mantissa bits; no infinity, no −0; NaN
    /// is `0x80`; largest 57344.
    E5M2FnUz,
}

impl F8 {
    const fn man_bits(self) -> u32 {
        match self {
            F8::E4M3Fn | F8::E4M3FnUz => 3,
            _ => 2,
        }
    }

    const fn bias(self) -> i32 {
        match self {
            F8::E4M3Fn => 7,
            F8::E4M3FnUz => 8,
            F8::E5M2 => 15,
            F8::E5M2FnUz => 16,
        }
    }

    /// The largest finite value.
    pub const fn max(self) -> f32 {
        match self {
            F8::E4M3Fn => 448.0,
            F8::E4M3FnUz => 240.0,
            _ => 57344.0,
        }
    }

    const fn unsigned_zero(self) -> bool {
        matches!(self, F8::E4M3FnUz | F8::E5M2FnUz)
    }

    fn nan(self) -> u8 {
        match self {
            F8::E4M3Fn => 0x7f,
            F8::E5M2 => 0x7e,
            _ => 0x80,
        }
    }

    /// The value of `b` (exact).
    pub fn to_f32(self, b: u8) -> f32 {
        let m_bits = self.man_bits();
        let e_bits = 7 - m_bits;
        let neg = b & 0x80 != 0;
        let e = ((b >> m_bits) & ((1 << e_bits) - 1)) as i32;
        let m = (b & ((1 << m_bits) - 1)) as i32;
        match self {
            F8::E4M3Fn if b & 0x7f == 0x7f => return f32::NAN,
            F8::E4M3FnUz | F8::E5M2FnUz if b == 0x80 => return f32::NAN,
            F8::E5M2 if e == 31 && m != 0 => return f32::NAN,
            F8::E5M2 if e == 31 => {
                return if neg {
                    f32::NEG_INFINITY
                } else {
                    f32::INFINITY
                }
            }
            _ => {}
        }
        let (mant, exp) = if e == 0 {
            (m, 1 - self.bias() - m_bits as i32)
        } else {
            (m | (1 << m_bits), e - self.bias() - m_bits as i32)
        };
        let v = mant as f32 * libm::exp2f(exp as f32);
        if neg {
            -v
        } else {
            v
        }
    }

    /// `x` in this format, rounded to nearest even. With `saturate`,
    /// values (and infinities) beyond the largest finite one become it;
    /// without, they become infinity (E5M2) or NaN (the others).
    pub fn from_f32(self, x: f32, saturate: bool) -> u8 {
        if x.is_nan() {
            return self.nan();
        }
        let sign: u8 = if x.is_sign_negative() { 0x80 } else { 0 };
        let mut a = x.abs() as f64;
        let max = self.max() as f64;
        if saturate && a > max {
            a = max;
        }
        let m_bits = self.man_bits() as i32;
        let emin = 1 - self.bias(); // exponent of the smallest normal
        let overflow = |s: u8| -> u8 {
            match self {
                F8::E5M2 => s | 0x7c,
                _ => self.nan(),
            }
        };
        if a.is_infinite() {
            return overflow(sign);
        }
        // Exponent of a (for a > 0), never below the subnormal range's.
        let e = if a == 0.0 {
            emin
        } else {
            (libm::floor(libm::log2(a)) as i32).max(emin)
        };
        let quantum = libm::exp2((e - m_bits) as f64);
        let mut q = libm::rint(a / quantum) as i64; // ties to even
        let mut e = e;
        if q >= 1 << (m_bits + 1) {
            q >>= 1;
            e += 1;
        }
        if q as f64 * libm::exp2((e - m_bits) as f64) > max {
            return if saturate {
                self.from_f32(x.signum() * self.max(), true)
            } else {
                overflow(sign)
            };
        }
        let bits = if q < 1 << m_bits {
            q as u8 // subnormal (or zero)
        } else {
            (((e + self.bias()) as u8) << m_bits) | (q as u8 & ((1 << m_bits) - 1) as u8)
        };
        if bits == 0 && self.unsigned_zero() {
            0
        } else {
            sign | bits
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_half_round_trips() {
        for h in 0..=u16::MAX {
            let f = f16_to_f32(h);
            if f.is_nan() {
                assert!(f16_to_f32(f32_to_f16(f)).is_nan());
            } else {
                assert_eq!(f32_to_f16(f), h, "{h:#06x} → {f}");
            }
        }
    }

    #[test]
    fn rounds_to_nearest_even() {
        assert_eq!(f32_to_f16(1.0), 0x3c00);
        assert_eq!(f32_to_f16(65504.0), 0x7bff);
        assert_eq!(f32_to_f16(65520.0), 0x7c00, "halfway to 2^16 rounds to inf");
        assert_eq!(f32_to_f16(1e-8), 0, "below half the smallest subnormal");
        // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: to even (1).
        assert_eq!(f32_to_f16(1.0 + f32::EPSILON * 4096.0), 0x3c00);
        assert_eq!(f32_to_f16(2.0f32.powi(-24)), 1, "smallest subnormal");
        assert_eq!(f32_to_f16(3.0 * 2.0f32.powi(-25)), 2, "1.5 ulp: to even");
        assert_eq!(f32_to_f16(-0.0), 0x8000);
        assert_eq!(f32_to_bf16(1.0), 0x3f80);
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        assert_eq!(
            f32_to_bf16(f32::from_bits(0x3f80_8000)),
            0x3f80,
            "tie to even"
        );
        assert_eq!(
            f32_to_bf16(f32::from_bits(0x3f81_8000)),
            0x3f82,
            "tie to even"
        );
        assert!(bf16_to_f32(f32_to_bf16(f32::NAN)).is_nan());
    }

    #[test]
    fn every_float8_round_trips_and_saturates() {
        for f in [F8::E4M3Fn, F8::E4M3FnUz, F8::E5M2, F8::E5M2FnUz] {
            for b in 0..=255u8 {
                let v = f.to_f32(b);
                if v.is_nan() {
                    assert!(f.to_f32(f.from_f32(v, true)).is_nan());
                } else {
                    assert_eq!(f.to_f32(f.from_f32(v, false)), v, "{f:?} {b:#04x}");
                }
            }
            assert_eq!(f.to_f32(f.from_f32(1e9, true)), f.max());
            assert_eq!(f.to_f32(f.from_f32(-f32::INFINITY, true)), -f.max());
        }
        assert_eq!(F8::E4M3Fn.from_f32(1e9, false), 0x7f, "NaN: no infinity");
        assert_eq!(F8::E5M2.from_f32(1e9, false), 0x7c, "infinity");
        assert_eq!(F8::E4M3Fn.from_f32(1.0, true), 0x38);
        assert_eq!(F8::E4M3FnUz.from_f32(-0.0, true), 0, "no negative zero");
        // 1.0625 lies halfway between 1 and 1.125 (E4M3): to even.
        assert_eq!(F8::E4M3Fn.to_f32(F8::E4M3Fn.from_f32(1.0625, true)), 1.0);
        assert_eq!(F8::E4M3Fn.to_f32(F8::E4M3Fn.from_f32(1.1875, true)), 1.25);
    }
}
