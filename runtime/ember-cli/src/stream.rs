//! `ember run --stream`: a whole recording fed through a model one frame
//! at a time, its state (if the blob keeps any) carried from frame to
//! frame, each frame's outputs stacked along a new first axis.

use anyhow::{bail, Result};
use ember_runtime::{Interpreter, TensorInfo};

use crate::host_array::HostArray;

/// The time axis of a recording for graph input `info`, and how many
/// frames it holds. The recording has the input's rank and differs from
/// the input's shape along one axis at most, by a whole multiple: that
/// axis is the time axis (`forced` names it instead). A recording of the
/// input's own shape is one frame.
pub fn time_axis(
    info: &TensorInfo<'_>,
    rec: &[usize],
    forced: Option<usize>,
) -> Result<(usize, usize)> {
    let want = info.dims();
    let name = info.name;
    if rec.len() != want.len() {
        bail!(
            "recording of shape {rec:?} for input '{name}' {want:?}: it needs the input's rank, \
             with the time axis as long as the recording"
        );
    }
    let differ: Vec<usize> = (0..want.len()).filter(|&a| rec[a] != want[a]).collect();
    let axis = match (forced, differ.as_slice()) {
        (Some(a), _) if a >= want.len() => {
            bail!("--stream-axis {a}: input '{name}' has {} axes", want.len())
        }
        (Some(a), d) if d.iter().all(|&x| x == a) => a,
        (Some(a), _) => bail!(
            "recording of shape {rec:?} for input '{name}' {want:?}: along axes other than \
             --stream-axis {a} it must match the input"
        ),
        (None, []) => return Ok((0, 1)),
        (None, [a]) => *a,
        (None, _) => bail!(
            "recording of shape {rec:?} for input '{name}' {want:?} differs in more than one axis; \
             it must match the input except along the time axis"
        ),
    };
    if want[axis] == 0 || rec[axis] == 0 || !rec[axis].is_multiple_of(want[axis]) {
        bail!(
            "recording of shape {rec:?} for input '{name}' {want:?}: {} steps along axis {axis} \
             are not a whole number of the model's {}-step frames",
            rec[axis],
            want[axis]
        );
    }
    Ok((axis, rec[axis] / want[axis]))
}

/// How a stream runs.
pub struct StreamOptions<'s> {
    /// The inputs' time axis, when the shapes do not tell.
    pub axis: Option<usize>,
    /// Run float frames holding NaN or infinity.
    pub allow_nonfinite: bool,
    /// The memory budget for the outputs kept, and how the user raises it
    /// (`--max-memory`, `max_memory=`).
    pub budget: (u64, &'s str),
}

/// Bytes the outputs of `frames` frames take while they are kept and then
/// stacked: each frame's arrays (4-byte elements at most, plus the
/// array's own bookkeeping), and the stacked copy.
fn kept_bytes(m: &ember_runtime::Model<'_>, frames: usize) -> Result<u64> {
    let mut per_frame = 0u64;
    for o in 0..m.num_outputs() {
        per_frame += 2 * 4 * m.output_info(o)?.numel() as u64 + 128;
    }
    Ok(per_frame.saturating_mul(frames as u64))
}

/// Runs `recordings` (one per graph input, in order) through the model a
/// frame at a time, from the state `interp` holds, calling `on_frame` after
/// each; returns each graph output, every frame's value stacked along a
/// new first axis, by name. Refuses before running when the outputs would
/// not fit the budget.
pub fn run_stream(
    interp: &mut Interpreter<'_, '_>,
    recordings: &[HostArray],
    opts: &StreamOptions<'_>,
    on_frame: &mut dyn FnMut(usize, usize),
) -> Result<Vec<(String, HostArray)>> {
    let m = interp.model();
    if recordings.len() != m.num_inputs() {
        bail!(
            "the model has {} inputs, {} recordings given",
            m.num_inputs(),
            recordings.len()
        );
    }
    let mut plan = vec![];
    for (i, rec) in recordings.iter().enumerate() {
        let info = m.input_info(i)?;
        let (axis, n) = time_axis(&info, rec.shape(), opts.axis)?;
        plan.push((axis, n, info.dims()[axis]));
    }
    // A one-frame recording next to longer ones is an input held constant.
    let frames = plan.iter().map(|p| p.1).max().unwrap_or(1);
    if let Some(i) = plan.iter().position(|p| p.1 != 1 && p.1 != frames) {
        bail!(
            "input '{}' has {} frames but another has {frames}",
            m.input_info(i)?.name,
            plan[i].1
        );
    }
    crate::limits::check_against(
        &format!("keeping the outputs of {frames} frames"),
        kept_bytes(m, frames)?,
        opts.budget.0,
        opts.budget.1,
    )?;
    let mut outs: Vec<Vec<HostArray>> = vec![Vec::with_capacity(frames); m.num_outputs()];
    for f in 0..frames {
        for (i, rec) in recordings.iter().enumerate() {
            let info = m.input_info(i)?;
            let (axis, n, step) = plan[i];
            let k = if n == 1 { 0 } else { f };
            let frame = rec.slice_axis(axis, k * step..(k + 1) * step);
            frame
                .fill_input(&info, &mut interp.input_mut(i)?, opts.allow_nonfinite)
                .map_err(|e| e.context(format!("frame {f}")))?;
        }
        interp.invoke()?;
        for (o, out) in outs.iter_mut().enumerate() {
            out.push(HostArray::from_output(&interp.output(o)?)?);
        }
        on_frame(f + 1, frames);
    }
    (0..m.num_outputs())
        .map(|o| {
            Ok((
                m.output_info(o)?.name.to_string(),
                HostArray::stack(&outs[o])?,
            ))
        })
        .collect()
}
