//! In-place radix-2 complex FFT with a precomputed twiddle table.

/// Largest supported FFT length.
pub const MAX_FFT: usize = 1024;

/// Twiddle factors for every power-of-two length up to [`MAX_FFT`].
#[derive(Clone)]
pub struct Fft {
    n: usize,
    cos: [f32; MAX_FFT / 2],
    sin: [f32; MAX_FFT / 2],
}

impl Fft {
    /// Tables for length `n` (a power of two, 2..=MAX_FFT); `None` otherwise.
    pub fn new(n: usize) -> Option<Fft> {
        if !n.is_power_of_two() || !(2..=MAX_FFT).contains(&n) {
            return None;
        }
        Some(Fft::pow2(n.trailing_zeros()))
    }

    /// Tables for length `2^log2`, with `log2` clamped to `1..=10`.
    pub fn pow2(log2: u32) -> Fft {
        let n = 1usize << log2.clamp(1, MAX_FFT.trailing_zeros());
        let mut f = Fft {
            n,
            cos: [0.0; MAX_FFT / 2],
            sin: [0.0; MAX_FFT / 2],
        };
        for k in 0..n / 2 {
            let a = -2.0 * core::f64::consts::PI * k as f64 / n as f64;
            f.cos[k] = libm::cos(a) as f32;
            f.sin[k] = libm::sin(a) as f32;
        }
        f
    }

    /// Length.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Never empty (length ≥ 2).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Forward transform of `re + i·im` (both of length `len()`), in place.
    pub fn forward(&self, re: &mut [f32], im: &mut [f32]) {
        let n = self.n;
        if re.len() != n || im.len() != n {
            return;
        }
        // Bit-reversal permutation.
        let bits = n.trailing_zeros();
        for i in 0..n {
            let j = i.reverse_bits() >> (usize::BITS - bits);
            if j > i {
                re.swap(i, j);
                im.swap(i, j);
            }
        }
        let mut len = 2;
        while len <= n {
            let step = n / len;
            for start in (0..n).step_by(len) {
                for k in 0..len / 2 {
                    let (wr, wi) = (self.cos[k * step], self.sin[k * step]);
                    let (a, b) = (start + k, start + k + len / 2);
                    let tr = re[b] * wr - im[b] * wi;
                    let ti = re[b] * wi + im[b] * wr;
                    re[b] = re[a] - tr;
                    im[b] = im[a] - ti;
                    re[a] += tr;
                    im[a] += ti;
                }
            }
            len *= 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_dft() {
        let n = 64;
        let f = Fft::new(n).unwrap();
        let x: [f32; 64] =
            core::array::from_fn(|i| libm::sinf(i as f32 * 0.3) + (i % 5) as f32 * 0.1);
        let (mut re, mut im) = (x, [0f32; 64]);
        f.forward(&mut re, &mut im);
        for k in 0..n {
            let (mut sr, mut si) = (0f64, 0f64);
            for (t, &v) in x.iter().enumerate() {
                let a = -2.0 * core::f64::consts::PI * (k * t) as f64 / n as f64;
                sr += v as f64 * libm::cos(a);
                si += v as f64 * libm::sin(a);
            }
            assert!(
                (re[k] as f64 - sr).abs() < 1e-4 && (im[k] as f64 - si).abs() < 1e-4,
                "bin {k}"
            );
        }
        assert!(Fft::new(48).is_none());
    }
}
