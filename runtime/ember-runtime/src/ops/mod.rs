//! The operators: one module per operator family, each holding its
//! opcodes' typed parameters (`Params`, shared with the compiler), load-time
//! validation, kernel choice, evaluation and work count.
//!
//! Each module has the same shape:
//!
//! ```text
//! pub struct Params { … }                 // the op's words, impl params::Params
//! pub(crate) const REFERENCE_SCRATCH: bool  // whether variant 0 takes a scratch
//! pub(crate) fn variant_name(OpCode, u16) -> Option<&str>  // optimized variants
//! pub(crate) fn validate(&Ctx) -> Result<()>   // once, at load
//! pub(crate) fn kernel_of(&Ctx) -> Result<Kernel>  // the one kernel choice
//! pub(crate) fn eval::<S>(&Ctx, Kernel, OpIo) -> Result<()>  // runs that kernel
//! pub(crate) fn macs(&Ctx) -> u64
//! ```
//!
//! The operator table (`op_table.rs`) declares every family, opcode
//! and kernel once; the [`OpCode`] and [`Kernel`] enums, their names, the
//! kernel-set bits, this module's list of families and the dispatch below
//! are generated from it.

use crate::error::{Error, Result};
use crate::format::{DType, Storage, REFERENCE_VARIANT};
use crate::kernel_set::KernelSet;
use crate::model::{Model, OpInfo};
pub use crate::op_codes::{Kernel, OpCode};

mod ctx;
pub mod params;
mod weights;

pub(crate) use ctx::Ctx;
pub use params::{Bounds, NoParams, ParamReader, Params, PerAxis};

/// The memory one op touches: its input bytes (arena or blob), its output
/// bytes and its scratch bytes (empty when it has none), the two writable
/// ones carved from the arena without overlapping each other or any input.
pub(crate) struct OpIo<'b> {
    pub ins: [&'b [u8]; crate::format::MAX_OP_INPUTS],
    pub out: &'b mut [u8],
    pub scratch: &'b mut [u8],
}

/// Whether input slot [`SCRATCH_INPUT`](crate::format::SCRATCH_INPUT) is
/// the op's scratch buffer: always for optimized variants, and for the
/// opcodes whose reference kernel needs one.
pub(crate) fn has_scratch(op: &OpInfo<'_>) -> bool {
    op.variant != REFERENCE_VARIANT || op.opcode.has_reference_scratch()
}

/// Whether this build has the operators the table marks `transformer`: every
/// target but 32-bit Arm (Cortex-M), where they would add about 32 KB of
/// code to firmware that runs CNNs, unless the `transformers` feature
/// brings them in. Every use is a constant test, so they are not linked.
const TRANSFORMERS: bool = cfg!(any(not(target_arch = "arm"), feature = "transformers"));

/// What validation says of a `transformer` op on a build without them.
/// Why an op other than Cast may not touch an edge type.
const EDGE_ONLY: &str = "only Cast reads or writes 16- and 8-bit float, u16 and int16 activations";

const TRANSFORMERS_ABSENT: &str =
    "transformer operators are not in this 32-bit Arm build: enable ember-runtime's `transformers` feature";

/// Whether `S` has kernel `k` (a constant once inlined: the arms it guards
/// are dead code, and not linked, for the kernels `S` leaves out).
#[inline(always)]
pub(crate) const fn has<S: KernelSet>(k: Kernel) -> bool {
    S::KERNELS.contains(k)
}

/// The error for a kernel `S` leaves out.
pub(crate) fn not_built(c: &Ctx<'_, '_>, kernel: Kernel) -> Error {
    Error::KernelNotBuilt {
        op: c.op.index,
        kernel,
    }
}

/// Expands the operator table into the module list, the per-opcode facts
/// the modules hold, and the dispatch.
macro_rules! declare_dispatch {
    ($(
        $(#[doc = $fdoc:literal])*
        $module:ident ($gate:ident) {
            ops: [$( $(#[doc = $odoc:literal])* $op:ident = $code:literal, )+]
            kernels: [$( $(#[doc = $kdoc:literal])* $kernel:ident = $kname:literal, )+]
        }
    )+) => {
        $( $(#[doc = $fdoc])* pub mod $module; )+

        impl OpCode {
            /// Whether the reference kernel itself takes a scratch buffer at
            /// [`SCRATCH_INPUT`](crate::format::SCRATCH_INPUT) (otherwise
            /// only optimized variants do).
            pub fn has_reference_scratch(self) -> bool {
                match self {
                    $($(OpCode::$op => $module::REFERENCE_SCRATCH,)+)+
                }
            }

            /// The kernel variant `v` of this opcode as `ember inspect`
            /// shows it; `None` for a variant this runtime does not have.
            pub fn variant_name(self, v: u16) -> Option<&'static str> {
                if v == REFERENCE_VARIANT {
                    return Some("reference");
                }
                match self {
                    $($(OpCode::$op => $module::variant_name(self, v),)+)+
                }
            }
        }

        /// Validates one op against its kernel's contract, and that `S` has
        /// the kernel.
        pub(crate) fn validate<S: KernelSet>(model: &Model<'_>, op: &OpInfo<'_>) -> Result<()> {
            let c = Ctx { model, op };
            if op.opcode != OpCode::Cast {
                // The edge types are converted by Cast where the graph
                // meets the caller (int16 constants are packed weights).
                for i in 0..op.n_inputs {
                    if let Some(t) = c.opt_input(i)? {
                        let packed = t.dtype == DType::I16 && t.storage == Storage::Const;
                        if t.dtype.is_edge_only() && !packed {
                            return Err(c.err(EDGE_ONLY));
                        }
                    }
                }
                if c.output()?.dtype.is_edge_only() {
                    return Err(c.err(EDGE_ONLY));
                }
            }
            // Each arm's guard is a constant: the arms of families `S`
            // leaves out, and the validators only they call, are dead code.
            match op.opcode {
                $(
                    $(OpCode::$op)|+
                        if (TRANSFORMERS || !is_transformer!($gate))
                            && S::KERNELS.any(&[$(Kernel::$kernel),+]) =>
                    {
                        $module::validate(&c)?
                    }
                )+
                o if o.is_transformer() && !TRANSFORMERS => {
                    return Err(c.err(TRANSFORMERS_ABSENT))
                }
                _ => return Err(not_built(&c, kernel_of(model, op)?)),
            }
            // (A fused kernel `S` lacks is refused when the op runs.)
            let k = kernel_of(model, op)?;
            if S::KERNELS.contains(k) {
                Ok(())
            } else {
                Err(not_built(&c, k))
            }
        }

        /// A kernel a validated op runs besides [`kernel_of`]'s: a
        /// convolution's fused table lookup.
        pub(crate) fn fused_kernel(model: &Model<'_>, op: &OpInfo<'_>) -> Result<Option<Kernel>> {
            match op.opcode {
                OpCode::Conv2d | OpCode::DepthwiseConv2d => conv::fused_kernel(&Ctx { model, op }),
                _ => Ok(None),
            }
        }

        /// The kernel a validated op runs on: the one choice, which
        /// [`eval`] follows.
        pub(crate) fn kernel_of(model: &Model<'_>, op: &OpInfo<'_>) -> Result<Kernel> {
            let c = Ctx { model, op };
            match op.opcode {
                $( $(OpCode::$op)|+ => $module::kernel_of(&c), )+
            }
        }

        /// Runs one validated op on the kernel [`kernel_of`] chooses.
        pub(crate) fn eval<S: KernelSet>(
            model: &Model<'_>,
            op: &OpInfo<'_>,
            io: OpIo<'_>,
        ) -> Result<()> {
            let c = Ctx { model, op };
            match op.opcode {
                $(
                    $(OpCode::$op)|+
                        if (TRANSFORMERS || !is_transformer!($gate))
                            && S::KERNELS.any(&[$(Kernel::$kernel),+]) =>
                    {
                        $module::eval::<S>(&c, $module::kernel_of(&c)?, io)
                    }
                )+
                o if o.is_transformer() && !TRANSFORMERS => Err(c.err(TRANSFORMERS_ABSENT)),
                _ => Err(not_built(&c, kernel_of(model, op)?)),
            }
        }

        /// Multiply-accumulates (or element operations, for element-wise
        /// ops) of a validated op.
        pub(crate) fn macs(model: &Model<'_>, op: &OpInfo<'_>) -> u64 {
            let c = Ctx { model, op };
            match op.opcode {
                $( $(OpCode::$op)|+ => $module::macs(&c), )+
            }
        }
    };
}

op_table!(declare_dispatch);
