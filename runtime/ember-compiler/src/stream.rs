//! Streaming conversion: a model that slides a window over time becomes a
//! model that takes one new frame per invoke and computes only what that
//! frame changes.
//!
//! Walking the lowered graph in order, each activation is either *whole*
//! (exactly the windowed model's tensor) or a *frame* (the newest position
//! along the time axis of a tensor the windowed model holds `len`
//! positions of). Ops that act on each position alone (pointwise
//! convolutions, element-wise ops, a softmax across channels) run on the
//! frame. A convolution or pooling that slides along time with stride 1
//! and no padding there keeps the `(k − 1)·d` frames it still needs in a
//! state tensor (a ring kept by `Concat` of the state and the new frame,
//! and `Slice` of all but the oldest as the next state) and computes one
//! output frame. Any other op that reads a frame gets the whole window
//! rebuilt the same way and runs as in the windowed model; everything
//! after it is whole. Once a frame's window length is 1 (a convolution as
//! long as what is left of the window), frame and whole tensor coincide.
//!
//! After warm-up (the first window's worth of frames), every output equals
//! the windowed model's output for the window ending at the newest frame,
//! bit for bit: the same kernels compute the same positions.

use ember_runtime::format::OpCode;
use ember_runtime::ops::{self, Params as _};

use crate::error::{CompileError, Result};
use crate::ir::{Graph, Op, StatePair, TId};

/// Which axis of the input is time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamAxis {
    /// Found from the model: the one axis of a 4-D (NHWC) input, height or
    /// width, longer than 1, or of a 3-D one, axis 1 or 2.
    Auto,
    /// This axis of the input.
    Axis(usize),
}

/// What the conversion did, for the compiler's caller to tell.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamReport {
    /// The streamed graph input.
    pub input: String,
    /// Its time axis.
    pub axis: usize,
    /// Frames in the windowed model's input (the warm-up).
    pub window: usize,
    /// Ops that compute one frame per invoke (data movement such as
    /// transposes left out).
    pub per_frame: Vec<String>,
    /// Ops that run on the rebuilt whole window, each with the reason.
    pub whole_window: Vec<(String, String)>,
    /// Bytes of state the ring buffers keep.
    pub state_bytes: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The windowed model's tensor, exactly.
    Whole,
    /// The newest position along `axis` of a tensor the windowed model
    /// holds `len` positions of.
    Frame { axis: usize, len: usize },
}

fn unsupported(what: String) -> CompileError {
    CompileError::Unsupported {
        op_type: "--stream".into(),
        node: String::new(),
        what,
    }
}

/// Picks the streamed graph input and its time axis.
fn pick_input(g: &Graph, axis: StreamAxis) -> Result<(TId, usize)> {
    let describe = |t: TId| format!("'{}' {:?}", g.tensors[t].name, g.tensors[t].dims);
    let all = || {
        g.inputs
            .iter()
            .map(|&t| describe(t))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match axis {
        StreamAxis::Axis(a) => g
            .inputs
            .iter()
            .copied()
            .find(|&t| g.tensors[t].dims.get(a).is_some_and(|&d| d > 1))
            .map(|t| (t, a))
            .ok_or_else(|| {
                unsupported(format!(
                    "no input is longer than 1 along axis {a} (inputs: {})",
                    all()
                ))
            }),
        StreamAxis::Auto => {
            let mut found = vec![];
            for &t in &g.inputs {
                let d = &g.tensors[t].dims;
                let axes: Vec<usize> = match d.len() {
                    4 => [1, 2].into_iter().filter(|&a| d[a] > 1).collect(),
                    // [N, T, F] or [N, C, T]: both are common.
                    3 => [1, 2].into_iter().filter(|&a| d[a] > 1).collect(),
                    _ => vec![],
                };
                match axes[..] {
                    [] => {}
                    [a] => found.push((t, a)),
                    _ => {
                        return Err(unsupported(format!(
                            "cannot tell the time axis of input {}: pass --stream-axis N",
                            describe(t)
                        )))
                    }
                }
            }
            match found[..] {
                [one] => Ok(one),
                [] => Err(unsupported(format!(
                    "no input has a time axis to stream along (inputs: {}); pass --stream-axis N",
                    all()
                ))),
                _ => Err(unsupported(format!(
                    "several inputs could be streamed ({}); pass --stream-axis N",
                    all()
                ))),
            }
        }
    }
}

/// Kernel extent, stride, dilation and paddings of a sliding op along
/// `axis` (1 = height, 2 = width of NHWC), if it is one.
fn window_along(g: &Graph, op: &Op, axis: usize) -> Option<(usize, usize, usize, usize)> {
    let (k, win) = match op.opcode {
        OpCode::Conv2d | OpCode::DepthwiseConv2d => {
            let w = &g.tensors[op.inputs.get(1).copied().flatten()?];
            let p = ops::conv::Params::from_words(&op.params).ok()?;
            (w.dims.get(axis).copied()?, p.window)
        }
        OpCode::AvgPool2d | OpCode::MaxPool2d => {
            let p = ops::pool::Params::from_words(&op.params).ok()?;
            ([0, p.pool.kh, p.pool.kw][axis.min(2)], p.pool.win)
        }
        _ => return None,
    };
    if g.tensors[op.output].dims.len() != 4 || !(1..=2).contains(&axis) {
        return None;
    }
    Some(if axis == 1 {
        (k, win.stride_h, win.dil_h, win.pad_top + win.pad_bottom)
    } else {
        (k, win.stride_w, win.dil_w, win.pad_left + win.pad_right)
    })
}

/// Whether `op`, reading the frame inputs `frames` (all along `axis`),
/// computes each position along `axis` from that position alone.
fn per_position(g: &Graph, op: &Op, axis: usize, is_frame: &dyn Fn(TId) -> bool) -> bool {
    use OpCode::*;
    let rank = g.tensors[op.output].dims.len();
    let others_constant_flat = || {
        op.inputs.iter().flatten().all(|&t| {
            if is_frame(t) {
                return true;
            }
            let c = &g.tensors[t];
            // A constant broadcast along time: its extent there is 1 (or
            // it has no such axis, aligned from the right).
            c.data.is_some() && {
                let lead = rank as isize - c.dims.len() as isize;
                let at = axis as isize - lead;
                at < 0 || c.dims[at as usize] == 1
            }
        })
    };
    match op.opcode {
        Conv2d | DepthwiseConv2d | AvgPool2d | MaxPool2d => {
            matches!(window_along(g, op, axis), Some((1, 1, _, 0)))
        }
        Add | Mul | Sub | Div | Pow | Min | Max | Mod | Fmod | PRelu | Unary | Lut | Clamp
        | Quantize | Dequantize | Cast | Copy => {
            // Element-wise: the output has the frame's shape.
            others_constant_flat()
                && op
                    .inputs
                    .iter()
                    .flatten()
                    .filter(|&&t| is_frame(t))
                    .all(|&t| g.tensors[t].dims == g.tensors[op.output].dims)
        }
        Softmax | LogSoftmax | Hardmax => axis + 1 != rank && others_constant_flat(),
        _ => false,
    }
}

/// Where time axis `axis` of a tensor of dims `root` lies in a view of it
/// of dims `view`, when the view only adds or drops unit axes.
fn view_axis(root: &[usize], view: &[usize], axis: usize) -> Option<usize> {
    let big = |d: &[usize]| d.iter().copied().filter(|&x| x != 1).collect::<Vec<_>>();
    if big(root) != big(view) || root.get(axis).is_none_or(|&d| d == 1) {
        return None;
    }
    // The time axis is the k-th axis longer than 1 in both.
    let k = root[..axis].iter().filter(|&&d| d != 1).count();
    view.iter()
        .enumerate()
        .filter(|(_, &d)| d != 1)
        .nth(k)
        .map(|(i, _)| i)
}

/// The time axis and windowed length of `t` if it is a frame.
fn frame_of(mode: &[Mode], t: TId) -> Option<(usize, usize)> {
    match mode.get(t) {
        Some(Mode::Frame { axis, len }) => Some((*axis, *len)),
        _ => None,
    }
}

/// Appends the ring that rebuilds `w` positions along `axis` from the
/// frame `x`: a state of `w − 1` positions and `Concat(state, x)`
/// (returned), whose all but oldest position become the next state —
/// straight from the window's bytes when time is the outermost axis that
/// is longer than 1 (a contiguous suffix), else through a `Slice`.
fn ring(g: &mut Graph, x: TId, axis: usize, w: usize, name: &str) -> Result<TId> {
    let t = g.tensors[x].clone();
    if !matches!(
        t.dtype,
        ember_runtime::DType::I8 | ember_runtime::DType::F32
    ) {
        return Err(unsupported(format!(
            "{name}: keeping {} frames of a {} tensor (Ember keeps int8 and float32 ones)",
            w - 1,
            t.dtype.name()
        )));
    }
    let with = |n: usize| {
        let mut d = t.dims.clone();
        d[axis] = n;
        d
    };
    let state = g.activation(
        &format!("{name}/stream_state"),
        t.dtype,
        with(w - 1),
        t.quant,
    );
    let window = g.activation(&format!("{name}/stream_window"), t.dtype, with(w), t.quant);
    g.push(
        OpCode::Concat,
        vec![Some(state), Some(x)],
        window,
        &ops::concat::Params { axis },
        &format!("{name}/stream_window"),
    );
    if t.dims[..axis].iter().all(|&d| d == 1) {
        g.state.push(StatePair {
            state,
            next: window,
            from_byte: t.bytes(),
        });
        return Ok(window);
    }
    let next = g.activation(
        &format!("{name}/stream_next"),
        t.dtype,
        with(w - 1),
        t.quant,
    );
    let mut start = vec![0; t.dims.len()];
    start[axis] = 1;
    let mut step = [0i32; ember_runtime::format::MAX_RANK];
    step[..t.dims.len()].fill(1);
    g.push(
        OpCode::Slice,
        vec![Some(window)],
        next,
        &ops::slice::Params {
            start: ops::params::PerAxis::new(&start),
            step,
        },
        &format!("{name}/stream_next"),
    );
    g.state.push(StatePair {
        state,
        next,
        from_byte: 0,
    });
    Ok(window)
}

/// Converts `g` (lowered, before kernel selection) into its per-frame
/// form.
pub fn convert(g: &mut Graph, axis: StreamAxis) -> Result<StreamReport> {
    let (input, ax) = pick_input(g, axis)?;
    let window = g.tensors[input].dims[ax];
    let mut report = StreamReport {
        input: g.tensors[input].name.clone(),
        axis: ax,
        window,
        ..Default::default()
    };
    // The windowed model's dims, before frames shrink to one position.
    let orig: Vec<Vec<usize>> = g.tensors.iter().map(|t| t.dims.clone()).collect();
    let mut mode = vec![Mode::Whole; g.tensors.len()];
    mode[input] = Mode::Frame {
        axis: ax,
        len: window,
    };
    g.tensors[input].dims[ax] = 1;
    let old_ops = std::mem::take(&mut g.ops);
    for mut op in old_ops {
        mode.resize(g.tensors.len(), Mode::Whole);
        // Views of frames: a view with the frame's own dims is the frame;
        // any other reshape needs the whole window.
        let mut needs_whole: Vec<(usize, String)> = vec![];
        for (i, slot) in op.inputs.iter_mut().enumerate() {
            let Some(t) = *slot else { continue };
            let Some(r) = g.tensors[t].alias_of else {
                continue;
            };
            if let Mode::Frame { axis, len } = mode[r] {
                if orig[t] == orig[r] {
                    *slot = Some(r);
                } else if let Some(a) = view_axis(&orig[r], &orig[t], axis) {
                    // Unit axes added or dropped: the view is a frame too.
                    g.tensors[t].dims[a] = 1;
                    mode[t] = Mode::Frame { axis: a, len };
                } else {
                    needs_whole.push((i, "reshapes the time axis".into()));
                }
            }
        }
        let frames: Vec<(usize, usize)> = op
            .inputs
            .iter()
            .flatten()
            .filter_map(|&t| frame_of(&mode, t))
            .collect();
        if frames.is_empty() && needs_whole.is_empty() {
            g.ops.push(op);
            continue;
        }
        let fax = frames.first().map_or(ax, |f| f.0);
        let same_axis = frames.iter().all(|f| f.0 == fax);
        let out = op.output;
        let out_len = orig[out].get(fax).copied().unwrap_or(1);
        // A transpose moves the frame's axis.
        if op.opcode == OpCode::Transpose && frames.len() == 1 && needs_whole.is_empty() {
            if let Ok(p) = ops::transpose::Params::from_words(&op.params) {
                if let Some(to) = p.perm.as_slice().iter().position(|&a| a == fax) {
                    g.tensors[out].dims[to] = 1;
                    mode[out] = Mode::Frame {
                        axis: to,
                        len: frames[0].1,
                    };
                    g.ops.push(op);
                    continue;
                }
            }
        }
        // The output of an op computed for the new frame only: one
        // position, or (once the window has shrunk to one) the whole.
        let out_mode = if out_len == 1 {
            Mode::Whole
        } else {
            Mode::Frame {
                axis: fax,
                len: out_len,
            }
        };
        let snapshot = mode.clone();
        let is_frame = |t: TId| frame_of(&snapshot, t).is_some();
        let slide = window_along(g, &op, fax);
        let streamable = needs_whole.is_empty() && same_axis;
        let slides_on = match (slide, op.inputs.first().copied().flatten()) {
            (Some((k, 1, d, 0)), Some(x)) if frames.len() == 1 && is_frame(x) => {
                Some((x, (k - 1) * d + 1))
            }
            _ => None,
        };
        if streamable && (per_position(g, &op, fax, &is_frame) || slides_on.is_some()) {
            if let Some((x, w)) = slides_on.filter(|&(_, w)| w > 1) {
                let win = ring(g, x, fax, w, &op.name)?;
                report.state_bytes += g.tensors[win].bytes() / w * (w - 1);
                op.inputs[0] = Some(win);
            }
            report.per_frame.push(op.name.clone());
            g.tensors[out].dims[fax] = 1;
            mode.resize(g.tensors.len(), Mode::Whole);
            mode[out] = out_mode;
            g.ops.push(op);
            continue;
        }
        // Not streamable: rebuild the whole window of every frame input.
        let why = if let Some((_, w)) = needs_whole.first() {
            w.clone()
        } else if !same_axis {
            "reads frames along different axes".into()
        } else if let Some((_, s, _, p)) = slide {
            if s != 1 {
                format!("slides along time with stride {s}")
            } else if p != 0 {
                "pads along time (it would need frames that have not come yet)".into()
            } else {
                "mixes its inputs across time".into()
            }
        } else {
            format!("{:?} mixes positions along time", op.opcode)
        };
        for i in 0..op.inputs.len() {
            let Some(t) = op.inputs[i] else { continue };
            let root = g.tensors[t].alias_of.unwrap_or(t);
            let Some((fa, len)) = frame_of(&mode, root) else {
                continue;
            };
            let win = ring(g, root, fa, len, &format!("{}/in{i}", op.name))?;
            report.state_bytes += g.tensors[win].bytes() / len * (len - 1);
            op.inputs[i] = Some(if root == t {
                win
            } else {
                // The view, now of the rebuilt window.
                let name = g.tensors[t].name.clone();
                g.alias(win, &name, orig[t].clone())
            });
        }
        report.whole_window.push((op.name.clone(), why));
        mode.resize(g.tensors.len(), Mode::Whole);
        mode[out] = Mode::Whole;
        g.ops.push(op);
    }
    if report.per_frame.is_empty() {
        let (op, why) = report.whole_window.first().cloned().unwrap_or_default();
        return Err(unsupported(format!(
            "nothing streams along axis {ax} of input '{}': its first op {op} {why}",
            report.input
        )));
    }
    // Views of frames elsewhere (graph outputs): follow their roots.
    for t in 0..g.tensors.len() {
        if let Some(r) = g.tensors[t].alias_of {
            if let Some(Mode::Frame { .. }) = mode.get(r) {
                if mode.get(t).is_some_and(|m| *m != Mode::Whole) {
                    // Done above, where an op read it.
                } else if orig[t] == orig[r] {
                    g.tensors[t].dims = g.tensors[r].dims.clone();
                } else if let Some((a, _)) = frame_of(&mode, r)
                    .and_then(|(axis, _)| view_axis(&orig[r], &orig[t], axis).map(|a| (a, axis)))
                {
                    g.tensors[t].dims[a] = 1;
                } else if g.outputs.contains(&t) {
                    return Err(unsupported(format!(
                        "output '{}' reshapes the time axis of a streamed tensor",
                        g.tensors[t].name
                    )));
                }
            }
        }
    }
    Ok(report)
}
