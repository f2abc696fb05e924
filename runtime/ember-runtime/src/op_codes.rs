//! The [`OpCode`] and [`Kernel`] enums, generated from the operator table
//! (`op_table.rs`): codes, names, and which kernels each opcode may
//! run on.

macro_rules! declare_codes {
    ($(
        $(#[doc = $fdoc:literal])*
        $module:ident ($gate:ident) {
            ops: [$( $(#[doc = $odoc:literal])* $op:ident = $code:literal, )+]
            kernels: [$( $(#[doc = $kdoc:literal])* $kernel:ident = $kname:literal, )+]
        }
    )+) => {
        /// Operator codes, as stored in an op record. Each op's inputs,
        /// outputs and params are documented on its module's `Params`
        /// under [`crate::ops`]; the runtime validates all of them at load
        /// time.
        ///
        /// Layout conventions: 4-D activations are NHWC; convolution
        /// filters are `[Cout, Kh, Kw, Cin/groups]`; depthwise filters are
        /// `[1, Kh, Kw, Cout]`; fully-connected weights are `[N, K]`
        /// (output-major).
        ///
        /// Integer ops that requantize take a `requant` tensor: `i32 [C,
        /// 2]` holding (multiplier, shift) pairs for
        /// [`Rounding::TfliteFixedPoint`](crate::Rounding::TfliteFixedPoint),
        /// or `f32 [C]` holding real scales for
        /// [`Rounding::OnnxFloat`](crate::Rounding::OnnxFloat); `C` is 1 for
        /// per-tensor or the number of output channels.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        #[repr(u16)]
        pub enum OpCode {
            $($( $(#[doc = $odoc])* $op = $code, )+)+
        }

        impl OpCode {
            /// Every opcode, in table order.
            pub const ALL: &'static [OpCode] = &[$($(OpCode::$op,)+)+];

            /// Decodes an opcode.
            pub fn from_u16(v: u16) -> Option<OpCode> {
                match v {
                    $($($code => Some(OpCode::$op),)+)+
                    _ => None,
                }
            }

            /// Human-readable operator name.
            pub const fn name(self) -> &'static str {
                match self {
                    $($(OpCode::$op => stringify!($op),)+)+
                }
            }

            /// The kernels this opcode's family may run on.
            pub const fn kernels(self) -> &'static [Kernel] {
                match self {
                    $( $(OpCode::$op)|+ => &[$(Kernel::$kernel),+], )+
                }
            }

            /// Whether this is a transformer operator (left out of 32-bit
            /// Arm builds without the `transformers` feature).
            pub const fn is_transformer(self) -> bool {
                match self {
                    $($(OpCode::$op => is_transformer!($gate),)+)+
                }
            }
        }

        /// One kernel of the runtime: one entry point of the op dispatch.
        /// Its discriminant is its bit in a [`Kernels`](crate::Kernels) set.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        #[repr(u8)]
        pub enum Kernel {
            $($( $(#[doc = $kdoc])* $kernel, )+)+
        }

        impl Kernel {
            /// Every kernel, in bit order.
            pub const ALL: &'static [Kernel] = &[$($(Kernel::$kernel,)+)+];

            /// Whether this kernel belongs to a transformer operator.
            pub const fn is_transformer(self) -> bool {
                match self {
                    $($(Kernel::$kernel => is_transformer!($gate),)+)+
                }
            }

            /// Its name, as `ember inspect` and the error messages show it.
            pub const fn name(self) -> &'static str {
                match self {
                    $($(Kernel::$kernel => $kname,)+)+
                }
            }
        }
    };
}

op_table!(declare_codes);
