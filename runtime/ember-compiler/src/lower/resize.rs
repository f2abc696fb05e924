//! `Resize` (opset 10 on) and `Upsample`: the output size and, for every
//! output coordinate of every axis, the input coordinates and weight it
//! reads are computed here, following the ONNX reference exactly
//! (coordinate transformation, nearest rounding, scales or sizes, axes,
//! aspect-ratio policy, crop-and-resize); the runtime gathers and blends by
//! the table ([`ember_runtime::kernels::resize`]). Nearest resize of int8 in
//! the QDQ pattern stays int8.

use ember_runtime::format::OpCode;
use ember_runtime::kernels::resize::MAX_TAPS;
use ember_runtime::ops::resize;
use ember_runtime::DType;
use tract_onnx::pb::NodeProto;

use super::attrs::{attr, attr_f, attr_i, attr_s, axis_of, unsupported};
use super::layout::permuted;
use super::{Act, Lowerer, Val};
use crate::error::{malformed, Result};

/// How output coordinates map to input coordinates.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Coords {
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfCropAndResize,
}

/// One axis's resize: extents, the scale the coordinates use, the region
/// of interest (crop-and-resize).
#[derive(Clone, Copy, Debug)]
struct Axis {
    input: usize,
    output: usize,
    scale: f64,
    roi: (f64, f64),
}

impl Axis {
    /// The input coordinate output coordinate `x` maps to; `None` outside
    /// the input under crop-and-resize.
    fn source(&self, x: usize, coords: Coords) -> Option<f64> {
        let (x, inp) = (x as f64, self.input as f64);
        let out_w = self.scale * inp; // the real-valued output width
        let v = match coords {
            Coords::AlignCorners if out_w == 1.0 => 0.0,
            Coords::AlignCorners => x * (inp - 1.0) / (out_w - 1.0),
            Coords::Asymmetric => x / self.scale,
            Coords::PytorchHalfPixel if out_w == 1.0 => -0.5,
            Coords::PytorchHalfPixel | Coords::HalfPixel => (x + 0.5) / self.scale - 0.5,
            Coords::HalfPixelSymmetric => {
                let adjustment = self.output as f64 / out_w;
                let offset = inp / 2.0 * (1.0 - adjustment);
                offset + (x + 0.5) / self.scale - 0.5
            }
            Coords::TfCropAndResize => {
                let (r0, r1) = self.roi;
                let v = if out_w == 1.0 {
                    (r1 - r0) * (inp - 1.0) / 2.0
                } else {
                    x * (r1 - r0) * (inp - 1.0) / (out_w - 1.0)
                } + r0 * (inp - 1.0);
                if v < 0.0 || v > inp - 1.0 {
                    return None;
                }
                v
            }
        };
        Some(v)
    }
}

/// The input coordinates one output coordinate reads, with their weights.
type Taps = Vec<(i32, f32)>;

/// The interpolation, as the ONNX reference computes its coefficients.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Nearest,
    Linear,
    LinearAntialias,
    /// Cubic with coefficient `A`.
    Cubic(f64),
    CubicAntialias(f64),
}

impl Kind {
    /// The coefficients for the neighbours of a point `ratio` (in `(0,
    /// 1]`) past the left one, at `scale`.
    fn coeffs(self, ratio: f64, scale: f64, nearest_mode: &str) -> Vec<f64> {
        match self {
            Kind::Nearest if ratio == 1.0 => vec![0.0, 1.0],
            Kind::Nearest => {
                let right = match nearest_mode {
                    "round_prefer_floor" => ratio > 0.5,
                    "round_prefer_ceil" => ratio >= 0.5,
                    "ceil" => true,
                    _ => false,
                };
                vec![!right as u8 as f64, right as u8 as f64]
            }
            Kind::Linear => vec![1.0 - ratio, ratio],
            Kind::LinearAntialias => {
                let s = scale.min(1.0);
                let start = (-1.0 / s).floor() as i64 + 1;
                let c: Vec<f64> = (start..2 - start)
                    .map(|i| (1.0 - ((i as f64 - ratio) * s).abs()).clamp(0.0, 1.0))
                    .collect();
                let sum: f64 = c.iter().sum();
                c.into_iter().map(|v| v / sum).collect()
            }
            Kind::Cubic(a) => {
                let (r, q) = (ratio, 1.0 - ratio);
                vec![
                    ((a * (r + 1.0) - 5.0 * a) * (r + 1.0) + 8.0 * a) * (r + 1.0) - 4.0 * a,
                    ((a + 2.0) * r - (a + 3.0)) * r * r + 1.0,
                    ((a + 2.0) * q - (a + 3.0)) * q * q + 1.0,
                    ((a * (q + 1.0) - 5.0 * a) * (q + 1.0) + 8.0 * a) * (q + 1.0) - 4.0 * a,
                ]
            }
            Kind::CubicAntialias(a) => {
                let s = scale.min(1.0);
                let k = |x: f64| {
                    let x = x.abs();
                    let (x2, x3) = (x * x, x * x * x);
                    if x <= 1.0 {
                        (a + 2.0) * x3 - (a + 3.0) * x2 + 1.0
                    } else if x < 2.0 {
                        a * x3 - 5.0 * a * x2 + 8.0 * a * x - 4.0 * a
                    } else {
                        0.0
                    }
                };
                let start = (-2.0 / s).floor() as i64 + 1;
                let c: Vec<f64> = (start..2 - start)
                    .map(|i| k(s * (i as f64 - ratio)))
                    .collect();
                let sum: f64 = c.iter().sum();
                c.into_iter().map(|v| v / sum).collect()
            }
        }
    }
}

/// The `n` integers nearest `x` among `0..limit` (ties to the smaller),
/// ascending: the ONNX reference's choice of neighbours.
fn nearest_indices(x: f64, n: usize, limit: i64) -> Vec<i64> {
    let f = x.floor() as i64;
    let (mut lo, mut hi) = ((f - n as i64 - 1).max(0), (f + n as i64 + 2).min(limit));
    if hi - lo < n as i64 {
        (lo, hi) = (0, limit);
    }
    let mut c: Vec<i64> = (lo..hi).collect();
    c.sort_by(|&p, &q| {
        ((x - p as f64).abs(), p)
            .partial_cmp(&((x - q as f64).abs(), q))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    c.truncate(n);
    c.sort_unstable();
    c
}

/// The taps (input coordinate, weight) of input coordinate `v` on axis
/// `a`, as the ONNX reference picks neighbours (in the input padded by
/// its edge values) and weighs them; nearest keeps only the chosen one.
fn taps(
    v: f64,
    a: &Axis,
    kind: Kind,
    nearest_mode: &str,
    exclude_outside: bool,
) -> Vec<(i32, f32)> {
    let ratio = if v == v.floor() { 1.0 } else { v - v.floor() };
    let mut coeffs = kind.coeffs(ratio, a.scale, nearest_mode);
    let n = coeffs.len();
    let pad = n.div_ceil(2) as i64;
    let input = a.input as i64;
    let idx: Vec<i64> = nearest_indices(v + pad as f64, n, input + 2 * pad)
        .into_iter()
        .map(|i| i - pad)
        .collect();
    if exclude_outside {
        for (c, &i) in coeffs.iter_mut().zip(&idx) {
            if i < 0 || i >= input {
                *c = 0.0;
            }
        }
        let sum: f64 = coeffs.iter().sum();
        if sum != 0.0 {
            coeffs.iter_mut().for_each(|c| *c /= sum);
        }
    }
    let clamp = |i: i64| i.clamp(0, input - 1) as i32;
    if kind == Kind::Nearest {
        let k = if coeffs[1] > coeffs[0] { 1 } else { 0 };
        return vec![(clamp(idx[k]), 1.0)];
    }
    idx.iter()
        .zip(&coeffs)
        .map(|(&i, &c)| (clamp(i), c as f32))
        .collect()
}

impl Lowerer<'_> {
    pub(super) fn lower_resize(&mut self, node: &NodeProto) -> Result<()> {
        let upsample = node.op_type == "Upsample";
        let xv = self.req_input(node, 0)?;
        let shape = match &xv {
            Val::Act(a) | Val::DqAct { src: a, .. } => a.shape.clone(),
            _ => return Err(unsupported(node, "resize of a constant")),
        };
        let rank = shape.len();
        let mode = attr_s(node, "mode").unwrap_or_else(|| "nearest".into());
        let antialias = attr_i(node, "antialias", 0) != 0;
        let cubic_a = attr_f(node, "cubic_coeff_a", -0.75) as f64;
        let kind = match mode.as_str() {
            "nearest" => Kind::Nearest,
            "linear" | "bilinear" if antialias => Kind::LinearAntialias,
            "linear" | "bilinear" => Kind::Linear,
            "cubic" if antialias => Kind::CubicAntialias(cubic_a),
            "cubic" => Kind::Cubic(cubic_a),
            other => {
                return Err(unsupported(
                    node,
                    format!("mode={other} is not supported (nearest, linear, cubic are)"),
                ))
            }
        };
        // Upsample and Resize-10 place pixels at their corners and round
        // down.
        let legacy = upsample || self.opset < 11;
        let coords = if legacy {
            Coords::Asymmetric
        } else {
            match attr_s(node, "coordinate_transformation_mode").as_deref() {
                None | Some("half_pixel") => Coords::HalfPixel,
                Some("half_pixel_symmetric") => Coords::HalfPixelSymmetric,
                Some("pytorch_half_pixel") => Coords::PytorchHalfPixel,
                Some("align_corners") => Coords::AlignCorners,
                Some("asymmetric") => Coords::Asymmetric,
                Some("tf_crop_and_resize") => Coords::TfCropAndResize,
                Some(other) => {
                    return Err(unsupported(
                        node,
                        format!("coordinate_transformation_mode={other}"),
                    ))
                }
            }
        };
        let nearest_mode = if legacy {
            "floor".to_string()
        } else {
            attr_s(node, "nearest_mode").unwrap_or_else(|| "round_prefer_floor".into())
        };
        if !matches!(
            nearest_mode.as_str(),
            "round_prefer_floor" | "round_prefer_ceil" | "floor" | "ceil"
        ) {
            return Err(unsupported(node, format!("nearest_mode={nearest_mode}")));
        }
        // Scales, sizes and the region of interest, by opset.
        let nonempty = |v: Option<Vec<f64>>| v.filter(|v| !v.is_empty());
        let konst = |s: &Self, i: usize, what: &str| -> Result<Option<Vec<f64>>> {
            match s.const_input(node, i)? {
                Some(c) => Ok(nonempty(Some(c.to_f64()))),
                None if node.input.get(i).is_some_and(|n| !n.is_empty()) => {
                    Err(unsupported(node, format!("{what} must be constant")))
                }
                None => Ok(None),
            }
        };
        let (roi, scales, sizes) = if upsample {
            let s = match attr(node, "scales") {
                Some(a) => Some(a.floats.iter().map(|&v| v as f64).collect()),
                None => konst(self, 1, "scales")?,
            };
            (None, s, None)
        } else if self.opset < 11 {
            (None, konst(self, 1, "scales")?, None)
        } else {
            (
                konst(self, 1, "roi")?,
                konst(self, 2, "scales")?,
                konst(self, 3, "sizes")?,
            )
        };
        let axes: Vec<usize> = match super::attrs::attr_ints(node, "axes") {
            Some(a) => a
                .iter()
                .map(|&v| axis_of(node, v, rank))
                .collect::<Result<_>>()?,
            None => (0..rank).collect(),
        };
        let mut axis: Vec<Axis> = shape
            .iter()
            .map(|&n| Axis {
                input: n,
                output: n,
                scale: 1.0,
                roi: (0.0, 1.0),
            })
            .collect();
        if let Some(roi) = &roi {
            if coords == Coords::TfCropAndResize {
                if roi.len() != 2 * axes.len() {
                    return Err(malformed(format!("node '{}': roi length", node.name)));
                }
                for (k, &d) in axes.iter().enumerate() {
                    axis[d].roi = (roi[k], roi[axes.len() + k]);
                }
            }
        }
        match (scales, sizes) {
            (_, Some(sizes)) => {
                if sizes.len() != axes.len() || sizes.iter().any(|&v| v < 1.0) {
                    return Err(malformed(format!(
                        "node '{}': sizes {sizes:?} for {} axes",
                        node.name,
                        axes.len()
                    )));
                }
                for (k, &d) in axes.iter().enumerate() {
                    axis[d].scale = sizes[k] / shape[d] as f64;
                    axis[d].output = sizes[k] as usize;
                }
                let policy = attr_s(node, "keep_aspect_ratio_policy");
                let pick = match policy.as_deref() {
                    None | Some("stretch") => None,
                    Some("not_larger") => Some(f64::min as fn(f64, f64) -> f64),
                    Some("not_smaller") => Some(f64::max as fn(f64, f64) -> f64),
                    Some(other) => {
                        return Err(unsupported(
                            node,
                            format!("keep_aspect_ratio_policy={other}"),
                        ))
                    }
                };
                if let Some(pick) = pick {
                    let s = axes
                        .iter()
                        .map(|&d| axis[d].scale)
                        .reduce(pick)
                        .unwrap_or(1.0);
                    for &d in &axes {
                        axis[d].scale = s;
                        axis[d].output = (s * shape[d] as f64 + 0.5) as usize;
                    }
                }
            }
            (Some(scales), None) => {
                if scales.len() != axes.len() || scales.iter().any(|&v| v <= 0.0 || !v.is_finite())
                {
                    return Err(malformed(format!(
                        "node '{}': scales {scales:?} for {} axes",
                        node.name,
                        axes.len()
                    )));
                }
                for (k, &d) in axes.iter().enumerate() {
                    axis[d].scale = scales[k];
                    axis[d].output = (scales[k] * shape[d] as f64) as usize;
                }
            }
            (None, None) => return Err(unsupported(node, "neither scales nor sizes is given")),
        }
        if let Some(a) = axis.iter().find(|a| a.output == 0) {
            return Err(unsupported(
                node,
                format!(
                    "an axis of {} resized to 0 (empty tensors are not supported)",
                    a.input
                ),
            ));
        }
        let exclude_outside = attr_i(node, "exclude_outside", 0) != 0;
        // Taps (input coordinate, weight) of every output coordinate of
        // each logical axis; None outside the input (crop-and-resize).
        let mut cols: Vec<Vec<Option<Taps>>> = vec![];
        for a in &axis {
            let mut col = vec![];
            for x in 0..a.output {
                col.push(
                    a.source(x, coords)
                        .map(|v| taps(v, a, kind, &nearest_mode, exclude_outside)),
                );
            }
            cols.push(col);
        }
        let width = cols
            .iter()
            .flatten()
            .flatten()
            .map(Vec::len)
            .max()
            .unwrap_or(1);
        if width > MAX_TAPS {
            return Err(unsupported(
                node,
                format!(
                    "antialiased downsampling reading {width} inputs per axis (at most {MAX_TAPS})"
                ),
            ));
        }
        // Entries of `width` taps: indices then weights (f32 bits).
        let entries: Vec<Vec<Vec<i32>>> = cols
            .iter()
            .map(|col| {
                col.iter()
                    .map(|e| match e {
                        None => {
                            let mut v = vec![-1; width];
                            v.extend(std::iter::repeat_n(0, width));
                            v
                        }
                        Some(t) => {
                            let pad = t[0].0;
                            let mut idx: Vec<i32> = t.iter().map(|p| p.0).collect();
                            let mut w: Vec<i32> = t.iter().map(|p| p.1.to_bits() as i32).collect();
                            idx.resize(width, pad);
                            w.resize(width, 0);
                            idx.extend(w);
                            idx
                        }
                    })
                    .collect()
            })
            .collect();
        let out = Self::out_name(node);
        let oshape: Vec<usize> = axis.iter().map(|a| a.output).collect();
        let extrapolation = attr_f(node, "extrapolation_value", 0.0);
        // int8 in the QDQ pattern: nearest moves the same integers (same
        // quantization on both sides); interpolation blends dequantized
        // reads and quantizes each output (any output quantization, no
        // activation between: the same bytes as DQ → Resize → Q).
        let blends = width > 1;
        let tail = match &xv {
            Val::DqAct { src, scale, zp } => self.match_qtail(&out).filter(|t| {
                if blends {
                    self.g.tensors[src.t].dtype == DType::I8
                        && t.act.lo == f32::NEG_INFINITY
                        && t.act.hi == f32::INFINITY
                } else {
                    t.scale == *scale && t.zp == *zp
                }
            }),
            _ => None,
        };
        let (x, quant, out_name) = match (&xv, &tail) {
            (Val::DqAct { src, scale, zp }, Some(t)) => {
                let nodes = t.nodes.clone();
                self.mark(&nodes);
                (src.clone(), Some((*scale, *zp)), t.out_name.clone())
            }
            _ => (self.float_act(&node.input[0], &node.op_type)?, None, out),
        };
        let dtype = self.g.tensors[x.t].dtype;
        let extrapolation = match quant {
            Some((s, z)) if !blends => {
                ((extrapolation / s).round_ties_even() as i32 + z).clamp(-128, 127)
            }
            _ if dtype == DType::F32 || blends => extrapolation.to_bits() as i32,
            _ => extrapolation as i32,
        };
        if quant.is_some() {
            self.g.set_quant(x.t, quant);
        }
        // The kernel walks the physical layout.
        let table: Vec<i32> = x
            .perm
            .iter()
            .flat_map(|&d| entries[d].iter().flatten().copied())
            .collect();
        let tt = self.g.const_i32(
            &format!("{}.resize_table", node.name),
            vec![table.len()],
            &table,
        );
        let q = match &tail {
            Some(t) if quant.is_some() => Some((t.scale, t.zp)),
            _ => self.g.tensors[x.t].quant,
        };
        let y = self
            .g
            .activation(&out_name, dtype, permuted(&oshape, &x.perm), q);
        self.g.push(
            OpCode::Resize,
            vec![Some(x.t), Some(tt)],
            y,
            &resize::Params {
                taps: width,
                extrapolation,
            },
            &node.name,
        );
        let a = Act {
            t: y,
            shape: oshape,
            perm: x.perm,
        };
        // In the int8 pattern the name bound is the QuantizeLinear's output:
        // an int8 tensor carrying the same quantization.
        self.vals.insert(out_name, Val::Act(a));
        Ok(())
    }
}
