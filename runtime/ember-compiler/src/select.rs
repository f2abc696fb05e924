//! Kernel selection: after lowering, each int8 convolution, depthwise
//! convolution and fully-connected op that an optimized kernel covers gets
//! that kernel's variant, its folded bias (computed here, once) and a
//! scratch tensor for the memory planner — so the device does no setup
//! work at run time.

use std::fmt;
use std::str::FromStr;

use ember_runtime::format::{
    FOLDED_BIAS_INPUT, PACKED_WEIGHTS_INPUT, REQUANT_BLOCKS_INPUT, SCRATCH_INPUT,
};
use ember_runtime::kernels::opt::{
    conv, conv_f32, depthwise_conv, dsp_weights_len, fold_bias, pack_weights_dsp, pack_weights_s16,
    packed_weights_len, requant_blocks, REQUANT_BLOCK_WORDS,
};
use ember_runtime::kernels::Shape4;
use ember_runtime::ops::{self, Params as _};
use ember_runtime::{DType, OpCode, Rounding};

use crate::ir::Graph;

/// The core a blob is compiled for (`ember compile --target`).
///
/// Every target except [`Target::Reference`] selects the optimized kernel
/// variants; which instructions they execute (Helium, DSP, NEON or
/// portable) is decided when the runtime is built for the core. Today all
/// of them share one weight layout (filter rows `[Co, Kh·Kw·Ci]`), which
/// is what every optimized kernel reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Target {
    /// Any core: optimized variants in their portable form.
    #[default]
    Generic,
    /// Reference kernels only (debugging, or to measure the speed-up).
    Reference,
    /// Cortex-M55 / M85 (Helium).
    CortexM55,
    /// Cortex-M4 (DSP extension).
    CortexM4,
    /// Cortex-M7 (DSP extension).
    CortexM7,
    /// Cortex-M33 (DSP extension).
    CortexM33,
    /// Cortex-A53 (NEON).
    CortexA53,
    /// Cortex-A76 class (NEON with dot product).
    CortexA76,
}

const NAMES: [(&str, Target); 8] = [
    ("generic", Target::Generic),
    ("reference", Target::Reference),
    ("cortex-m55", Target::CortexM55),
    ("cortex-m4", Target::CortexM4),
    ("cortex-m7", Target::CortexM7),
    ("cortex-m33", Target::CortexM33),
    ("cortex-a53", Target::CortexA53),
    ("cortex-a76", Target::CortexA76),
];

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(s))
            .map(|&(_, t)| t)
            .ok_or_else(|| {
                let names: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
                format!("unknown target '{s}' (known: {})", names.join(", "))
            })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = NAMES.iter().find(|(_, t)| t == self).map(|(n, _)| *n);
        f.write_str(name.unwrap_or("generic"))
    }
}

fn shape4(d: &[usize]) -> Option<Shape4> {
    match d {
        &[n, h, w, c] => Some(Shape4::new(n, h, w, c)),
        _ => None,
    }
}

fn i32s(b: &[u8]) -> Vec<i32> {
    b.chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

impl Target {
    /// Whether the core has the DSP extension, whose two-pixel
    /// convolution path needs halfword copies of two receptive fields in
    /// scratch (planned only for these targets).
    pub fn has_dsp(self) -> bool {
        matches!(
            self,
            Target::CortexM4 | Target::CortexM7 | Target::CortexM33
        )
    }

    /// Whether the blob stores the blocked requantization table (shifts
    /// split per block of four channels): read by the Helium epilogue on
    /// the M55 and by the scalar one elsewhere. `generic` blobs leave it
    /// out (smaller; the kernels then derive the shifts per value).
    pub fn wants_requant_blocks(self) -> bool {
        !matches!(self, Target::Generic | Target::Reference)
    }

    /// Whether convolutions get the larger scratch of the two-pixel paths:
    /// halfword copies of two receptive fields for the DSP cores, a second
    /// field for the NEON cores.
    pub fn plans_two_pixel_scratch(self) -> bool {
        self.has_dsp() || self.packs_weights_s16()
    }

    /// Whether convolution filters are also stored packed for the NEON
    /// lane-per-channel kernel ([`pack_weights_s16`]): the Cortex-A
    /// targets. The runtime uses them on cores without `SDOT`.
    pub fn packs_weights_s16(self) -> bool {
        self.is_cortex_a()
    }

    /// Whether convolution filters are also stored widened to int16 in
    /// the DSP kernels' order ([`pack_weights_dsp`]): the Cortex-M DSP
    /// targets, whose two-pixel kernel then loads weights ready for
    /// `SMLAD` (twice the filter's flash, a third fewer instructions).
    pub fn packs_weights_dsp(self) -> bool {
        self.has_dsp()
    }

    /// The Cortex-A (NEON) targets.
    pub fn is_cortex_a(self) -> bool {
        matches!(self, Target::CortexA53 | Target::CortexA76)
    }

    /// Whether the f32 convolution, depthwise and fully connected ops get
    /// their blocked variants: every core target. On Cortex-A they sum
    /// with NEON FMA (within the stated bound); on Cortex-M the
    /// convolutions sum in the reference kernels' order (bit-exact) and
    /// the fully connected in f32 where the reference uses f64 (within
    /// the bound).
    pub fn has_float_kernels(self) -> bool {
        !matches!(self, Target::Generic | Target::Reference)
    }
}

/// A convolution's params, if the op's words are well formed.
fn conv_params(op: &crate::ir::Op) -> Option<ops::conv::Params> {
    ops::conv::Params::from_words(&op.params).ok()
}

/// The f32 kernel variant for op `i` on a core target, if it has one:
/// convolutions with one group, depthwise with multiplier 1, fully
/// connected.
fn float_variant(g: &Graph, i: usize, target: Target) -> Option<u16> {
    let op = &g.ops[i];
    let x = &g.tensors[op.inputs.first().copied().flatten()?];
    let w = &g.tensors[op.inputs.get(1).copied().flatten()?];
    if !target.has_float_kernels() || x.dtype != DType::F32 || w.data.is_none() {
        return None;
    }
    match op.opcode {
        OpCode::Conv2d if conv_params(op)?.groups == 1 => Some(ops::conv::VARIANT_F32),
        OpCode::DepthwiseConv2d => {
            conv_params(op)?;
            let (xs, ws) = (shape4(&x.dims)?, shape4(&w.dims)?);
            (xs.c == ws.c).then_some(ops::conv::VARIANT_DEPTHWISE_F32)
        }
        OpCode::FullyConnected if w.dims.len() == 2 => Some(ops::fully_connected::VARIANT_F32),
        _ => None,
    }
}

/// Chooses kernel variants for `target` in place; `packed_weights`: also
/// store the int16 filter copies the target's kernels read, if any.
pub fn select(g: &mut Graph, target: Target, rounding: Rounding, packed_weights: bool) {
    if target == Target::Reference {
        return;
    }
    for i in 0..g.ops.len() {
        let op = &g.ops[i];
        if op.opcode == OpCode::DynamicFullyConnected {
            g.ops[i].variant = ops::dynamic_fc::VARIANT_OPT;
            continue;
        }
        if op.opcode == OpCode::Add && rounding == Rounding::TfliteFixedPoint {
            let dims = |k: usize| op.inputs.get(k).copied().flatten().map(|t| &g.tensors[t]);
            if let (Some(a), Some(b)) = (dims(0), dims(1)) {
                let y = &g.tensors[op.output];
                if a.dtype == DType::I8 && a.dims == y.dims && b.dims == y.dims {
                    g.ops[i].variant = ops::binary::VARIANT_ADD_S8;
                }
            }
            continue;
        }
        if op.opcode == OpCode::Resize {
            g.ops[i].variant = ops::resize::VARIANT_OPT;
            continue;
        }
        if op.opcode == OpCode::Lut {
            g.ops[i].variant = ops::unary::VARIANT_LUT_OPT;
            continue;
        }
        if op.opcode == OpCode::AvgPool2d {
            let x = op.inputs.first().copied().flatten().map(|t| &g.tensors[t]);
            let y = &g.tensors[op.output];
            let p = ops::pool::Params::from_words(&op.params).ok();
            if let (Some(x), Some(p)) = (x, p) {
                let w = &p.pool.win;
                let whole = x.dims.len() == 4
                    && p.pool.kh == x.dims[1]
                    && p.pool.kw == x.dims[2]
                    && [w.pad_top, w.pad_left, w.pad_bottom, w.pad_right] == [0; 4]
                    && y.dims.len() == 4
                    && y.dims[1] == 1
                    && y.dims[2] == 1;
                if x.dtype == DType::I8 && whole {
                    g.ops[i].variant = ops::pool::VARIANT_GLOBAL_AVG_S8;
                }
            }
            continue;
        }
        if !matches!(
            op.opcode,
            OpCode::Conv2d | OpCode::DepthwiseConv2d | OpCode::FullyConnected
        ) {
            continue;
        }
        if let Some(v) = float_variant(g, i, target) {
            let op = &g.ops[i];
            let scratch = match (op.opcode, op.inputs.get(1).copied().flatten()) {
                (OpCode::Conv2d, Some(w)) => match (shape4(&g.tensors[w].dims), conv_params(op)) {
                    (Some(ws), Some(p)) => conv_f32::conv2d_f32_opt_scratch_size(ws, &p.window),
                    _ => 0,
                },
                _ => 0,
            };
            let st = (scratch > 0)
                .then(|| g.activation(&format!("op{i}.scratch"), DType::I8, vec![scratch], None));
            let op = &mut g.ops[i];
            if st.is_some() {
                op.inputs.resize(SCRATCH_INPUT + 1, None);
                op.inputs[SCRATCH_INPUT] = st;
            }
            op.variant = v;
            continue;
        }
        let (Some(Some(xt)), Some(Some(wt))) = (op.inputs.first(), op.inputs.get(1)) else {
            continue;
        };
        let (x, w, y) = (&g.tensors[*xt], &g.tensors[*wt], &g.tensors[op.output]);
        let Some(wdata) = w.data.as_ref() else {
            continue;
        };
        if x.dtype != DType::I8 || w.dtype != DType::I8 || y.dtype != DType::I8 {
            continue;
        }
        let in_zp = x.quant.map(|q| q.1).unwrap_or(0);
        let wv: Vec<i8> = wdata.iter().map(|&b| b as i8).collect();
        let (v, channels, scratch, channel_last) = match op.opcode {
            OpCode::Conv2d => {
                let (Some(ws), Some(_), Some(p)) =
                    (shape4(&w.dims), shape4(&x.dims), conv_params(op))
                else {
                    continue;
                };
                if p.groups != 1 {
                    continue;
                }
                let win = p.window;
                let v = if conv::is_pointwise(ws, &win) {
                    ops::conv::VARIANT_POINTWISE
                } else {
                    ops::conv::VARIANT_IM2COL
                };
                (
                    v,
                    ws.n,
                    conv::conv2d_s8_opt_scratch_size(ws, &win, target.plans_two_pixel_scratch()),
                    false,
                )
            }
            OpCode::DepthwiseConv2d => {
                let (Some(ws), Some(xs)) = (shape4(&w.dims), shape4(&x.dims)) else {
                    continue;
                };
                if conv_params(op).is_none() || xs.c != ws.c {
                    continue;
                }
                (
                    ops::conv::VARIANT_DEPTHWISE,
                    ws.c,
                    depthwise_conv::depthwise_conv2d_s8_opt_scratch_size(ws.c),
                    true,
                )
            }
            _ => {
                if w.dims.len() != 2 || w.quant.map(|q| q.1).unwrap_or(0) != 0 {
                    continue;
                }
                (ops::fully_connected::VARIANT_S8, w.dims[0], 0, false)
            }
        };
        let bias = op
            .inputs
            .get(2)
            .copied()
            .flatten()
            .and_then(|b| g.tensors[b].data.as_ref())
            .map(|b| i32s(b));
        let mut folded = vec![0i32; channels];
        fold_bias(bias.as_deref(), &wv, in_zp, channel_last, &mut folded);
        let is_conv = op.opcode == OpCode::Conv2d;
        let is_fc = op.opcode == OpCode::FullyConnected;
        let blocked = (target.wants_requant_blocks()
            && rounding == Rounding::TfliteFixedPoint
            && op.opcode != OpCode::FullyConnected)
            .then(|| op.inputs.get(3).copied().flatten())
            .flatten()
            .and_then(|r| g.tensors[r].data.as_ref())
            .map(|b| i32s(b))
            .filter(|pairs| pairs.len() == 2 * channels && channels >= 4)
            .map(|pairs| {
                let mut t = vec![0i32; channels / 4 * REQUANT_BLOCK_WORDS];
                requant_blocks(&pairs, channels, &mut t);
                t
            });
        // Short names: the blob stores every tensor name, and TFLite-made
        // op names run to a hundred characters.
        let fb = g.const_i32(&format!("op{i}.folded_bias"), vec![channels], &folded);
        let st = (scratch > 0)
            .then(|| g.activation(&format!("op{i}.scratch"), DType::I8, vec![scratch], None));
        let bt = blocked.map(|t| {
            let n = t.len();
            g.const_i32(&format!("op{i}.requant_blocks"), vec![n], &t)
        });
        // The NEON cores' convolutions also get the filter packed eight
        // output channels per block, widened to int16 (lanes = channels);
        // only when the blocked table is there, which that kernel reads.
        let k = wv.len().checked_div(channels).unwrap_or(0);
        let pt = if packed_weights
            && target.packs_weights_s16()
            && is_conv
            && bt.is_some()
            && packed_weights_len(channels, k) > 0
        {
            let mut t = vec![0i16; packed_weights_len(channels, k)];
            pack_weights_s16(&wv, channels, k, &mut t);
            let n = t.len();
            Some(g.const_i16(&format!("op{i}.packed_weights"), vec![n], &t))
        } else if packed_weights
            && target.packs_weights_dsp()
            && (is_conv || is_fc)
            && dsp_weights_len(channels, k) > 0
        {
            let mut t = vec![0i16; dsp_weights_len(channels, k)];
            pack_weights_dsp(&wv, channels, k, &mut t);
            let n = t.len();
            Some(g.const_i16(&format!("op{i}.packed_weights"), vec![n], &t))
        } else {
            None
        };
        let op = &mut g.ops[i];
        op.inputs.resize(PACKED_WEIGHTS_INPUT + 1, None);
        op.inputs[PACKED_WEIGHTS_INPUT] = pt;
        op.inputs[REQUANT_BLOCKS_INPUT] = bt;
        op.inputs[FOLDED_BIAS_INPUT] = Some(fb);
        // The folded bias replaces the bias: drop it so it is not stored twice.
        op.inputs[2] = None;
        op.inputs[SCRATCH_INPUT] = st;
        while op.inputs.len() > FOLDED_BIAS_INPUT + 1 && op.inputs.last() == Some(&None) {
            op.inputs.pop();
        }
        op.variant = v;
    }
}
