//! Inputs the fuzz targets (`fuzz/`, `cargo xtask fuzz`) found, reduced to
//! what triggers them: each must now be a clean error, not a panic.

use ember_compiler::{compile, CompileError, Options};
use prost::Message;
use tract_onnx::pb;

/// A float initializer of `dims` holding 0, 1, 2, …
fn counting(name: &str, dims: &[i64]) -> pb::TensorProto {
    let n: i64 = dims.iter().product();
    ember_tests::onnx::floats(name, dims, (0..n).map(|i| i as f32).collect())
}

/// compile_onnx: a binary operator on two constants whose shapes do not
/// broadcast panicked in constant folding (ndarray's `+` on incompatible
/// shapes, `lower/fold.rs`); found as a mutated keyword model whose Add
/// met a constant of another shape.
#[test]
fn folding_constants_that_do_not_broadcast_is_an_error() {
    for op in ["Add", "Sub", "Mul", "Div"] {
        let onnx = pb::ModelProto {
            ir_version: 8,
            opset_import: vec![pb::OperatorSetIdProto {
                domain: String::new(),
                version: 13,
            }],
            graph: Some(pb::GraphProto {
                name: "g".into(),
                node: vec![
                    pb::NodeProto {
                        name: "r".into(),
                        op_type: "Relu".into(),
                        input: vec!["x".into()],
                        output: vec!["r".into()],
                        ..Default::default()
                    },
                    pb::NodeProto {
                        name: "n".into(),
                        op_type: op.into(),
                        input: vec!["a".into(), "b".into()],
                        output: vec!["y".into()],
                        ..Default::default()
                    },
                ],
                input: vec![ember_tests::onnx::value(
                    "x",
                    ember_tests::onnx::FLOAT,
                    &[1, 4],
                )],
                initializer: vec![counting("a", &[2, 3]), counting("b", &[4])],
                output: ["r", "y"]
                    .iter()
                    .map(|o| pb::ValueInfoProto {
                        name: o.to_string(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec();
        match compile(&onnx, &Options::default()) {
            Err(CompileError::Malformed(m)) => {
                assert_eq!(m, "node 'n': shapes do not broadcast", "{op}")
            }
            other => panic!("{op}: expected a malformed-model error, got {other:?}"),
        }
    }
}

/// A model reshaping `x` [1, 4] to the constant `target`.
fn reshape_model(target: &[i64]) -> Vec<u8> {
    let shape = pb::TensorProto {
        name: "s".into(),
        dims: vec![target.len() as i64],
        data_type: 7,
        raw_data: target.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    };
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(pb::GraphProto {
            name: "g".into(),
            node: vec![pb::NodeProto {
                name: "n".into(),
                op_type: "Reshape".into(),
                input: vec!["x".into(), "s".into()],
                output: vec!["y".into()],
                ..Default::default()
            }],
            input: vec![ember_tests::onnx::value(
                "x",
                ember_tests::onnx::FLOAT,
                &[1, 4],
            )],
            initializer: vec![shape],
            output: vec![pb::ValueInfoProto {
                name: "y".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn malformed_message(onnx: &[u8]) -> String {
    match compile(onnx, &Options::default()) {
        Err(CompileError::Malformed(m)) => m,
        other => panic!("expected a malformed-model error, got {other:?}"),
    }
}

/// compile_onnx: a Reshape whose target shape's element count overflows
/// 64 bits panicked ("attempt to multiply with overflow" in
/// `lower/shape.rs`; wrapped silently in release builds), with or without
/// a -1 to infer; found as mutated keyword models whose Reshape shape
/// constant had huge entries.
#[test]
fn reshape_to_an_overflowing_shape_is_an_error() {
    let big = 1i64 << 33;
    assert_eq!(
        malformed_message(&reshape_model(&[big, big, big])),
        format!("node 'n': cannot reshape [1, 4] to [{big}, {big}, {big}]")
    );
    assert_eq!(
        malformed_message(&reshape_model(&[big, -1, big])),
        format!("node 'n': cannot infer -1 in [{big}, -1, {big}] for 4 elements")
    );
}

/// compile_onnx: a graph input whose element count overflows 64 bits
/// ([1, 49, 2^63 - 1, 1] on a keyword model) overflowed the element count
/// of the Reshape after it; such an input is refused where it is read.
#[test]
fn graph_input_with_an_overflowing_element_count_is_refused() {
    use ember_tests::onnx::{self, node, value, FLOAT};
    let graph = pb::GraphProto {
        name: "g".into(),
        node: vec![node("Relu", &["x"], "y", vec![])],
        input: vec![value("x", FLOAT, &[1, 49, i64::MAX, 1])],
        output: vec![value("y", FLOAT, &[1, 49, i64::MAX, 1])],
        ..Default::default()
    };
    match compile(&onnx::model(graph, 13), &Options::default()) {
        Err(e @ CompileError::Unsupported { .. }) => assert_eq!(
            e.to_string(),
            format!(
                "unsupported operator graph input (node 'x'): shape [1, 49, {}, 1] of f32 takes more than 2^64 bytes (Ember's tensors hold at most 4 GiB)",
                i64::MAX
            )
        ),
        other => panic!("expected the 4 GiB limit, got {other:?}"),
    }
}

/// compile_onnx: ConstantOfShape of a shape with a zero axis and other axes
/// whose product overflows passed the folding budget (no elements) and
/// panicked in ndarray ("Shape too large, product of non-zero axis lengths
/// overflows isize"); found on a mutated keyword model.
#[test]
fn constant_of_shape_with_a_zero_axis_and_huge_others_is_refused() {
    use ember_tests::onnx::{self, integers, node, value, FLOAT, INT64};
    let big = 1i64 << 40;
    let graph = pb::GraphProto {
        name: "g".into(),
        node: vec![
            node("ConstantOfShape", &["s"], "c", vec![]),
            node("Relu", &["x"], "y", vec![]),
        ],
        initializer: vec![integers("s", INT64, &[3], vec![0, big, big])],
        input: vec![value("x", FLOAT, &[1, 4])],
        output: vec![
            value("y", FLOAT, &[1, 4]),
            value("c", FLOAT, &[0, big, big]),
        ],
        ..Default::default()
    };
    let msg = compile(&onnx::model(graph, 13), &Options::default())
        .expect_err("must not compile")
        .to_string();
    assert_eq!(
        msg,
        format!("unsupported operator ConstantOfShape (node 'ConstantOfShape_c'): folding a constant of shape [0, {big}, {big}] (the compiler folds at most 67108864 elements)")
    );
}

/// A reduction over axis 0 of a scalar (found as an ONNX node-test model
/// edited by the compile_onnx fuzz target) sliced past the end of the
/// shape; now a one-line error naming the axis and the rank.
#[test]
fn reduce_over_a_scalars_axis_is_refused() {
    use ember_tests::onnx::{ints, model, node, value, FLOAT};
    let bytes = model(
        pb::GraphProto {
            name: "g".into(),
            node: vec![node("ReduceMax", &["x"], "y", vec![ints("axes", &[0])])],
            input: vec![value("x", FLOAT, &[])],
            output: vec![value("y", FLOAT, &[])],
            ..Default::default()
        },
        13,
    );
    assert_eq!(
        malformed_message(&bytes),
        "node 'ReduceMax_y': axis 0 out of range for rank 0"
    );
}

/// A Concat of activations of different ranks (found as an ONNX node-test
/// model edited by the compile_onnx fuzz target) indexed past the shorter
/// shape; now an error naming both shapes.
#[test]
fn concat_of_mismatched_shapes_is_refused() {
    use ember_tests::onnx::{int, model, node, value, FLOAT};
    for (b, axis) in [(&[2][..], 0), (&[2, 3, 1][..], 0), (&[2, 4][..], 0)] {
        let bytes = model(
            pb::GraphProto {
                name: "g".into(),
                node: vec![node("Concat", &["a", "b"], "y", vec![int("axis", axis)])],
                input: vec![value("a", FLOAT, &[2, 3]), value("b", FLOAT, b)],
                output: vec![value("y", FLOAT, &[])],
                ..Default::default()
            },
            13,
        );
        assert_eq!(
            malformed_message(&bytes),
            format!("node 'Concat_y': Concat inputs [2, 3] and {b:?} differ outside axis 0")
        );
    }
    // Folded constants: an axis past their rank tripped an assertion in
    // ndarray's concatenate.
    let bytes = model(
        pb::GraphProto {
            name: "g".into(),
            node: vec![
                node("Concat", &["a", "b"], "c", vec![int("axis", 3)]),
                node("Relu", &["x"], "y", vec![]),
            ],
            input: vec![value("x", FLOAT, &[2])],
            initializer: vec![
                ember_tests::onnx::floats("a", &[2], vec![1.0, 2.0]),
                ember_tests::onnx::floats("b", &[2], vec![1.0, 2.0]),
            ],
            output: vec![value("y", FLOAT, &[]), value("c", FLOAT, &[])],
            ..Default::default()
        },
        13,
    );
    assert_eq!(
        malformed_message(&bytes),
        "node 'Concat_c': axis 3 out of range for rank 1"
    );
}

/// Operators with an axis, on a scalar (found as ONNX node-test models
/// edited by the compile_onnx fuzz target): axis 0 was accepted for rank 0
/// and Gather, Split and Softmax indexed the empty shape; an axis must now
/// lie inside the input's rank.
#[test]
fn axis_of_a_scalar_is_refused() {
    use ember_tests::onnx::{integers, model, node, value, FLOAT, INT64};
    for op in ["Gather", "Split", "Softmax", "LogSoftmax", "Hardmax"] {
        let inputs: &[&str] = if op == "Gather" { &["x", "i"] } else { &["x"] };
        let bytes = model(
            pb::GraphProto {
                name: "g".into(),
                node: vec![node(
                    op,
                    inputs,
                    "y",
                    vec![ember_tests::onnx::int("axis", 0)],
                )],
                input: vec![value("x", FLOAT, &[])],
                initializer: vec![integers("i", INT64, &[1], vec![0])],
                output: vec![value("y", FLOAT, &[])],
                ..Default::default()
            },
            13,
        );
        assert_eq!(
            malformed_message(&bytes),
            format!("node '{op}_y': axis 0 out of range for rank 0"),
            "{op}"
        );
    }
}

/// Window geometry from hostile attributes (found as an ONNX node-test
/// AveragePool edited by the compile_onnx fuzz target: a 3-D pool with
/// kernel [0, 2, 2] and ceil_mode underflowed `k - 1`); kernels must be
/// non-empty, strides, dilations and pads at most 2^31 - 1, and the
/// arithmetic on them cannot overflow.
#[test]
fn hostile_window_geometry_is_refused() {
    use ember_tests::onnx::{int, ints, model, node, string, value, FLOAT};
    let pool = |dims: &[i64], attrs: Vec<pb::AttributeProto>| {
        model(
            pb::GraphProto {
                name: "g".into(),
                node: vec![node("AveragePool", &["x"], "y", attrs)],
                input: vec![value("x", FLOAT, dims)],
                output: vec![value("y", FLOAT, &[])],
                ..Default::default()
            },
            13,
        )
    };
    let e = malformed_message(&pool(
        &[1, 1, 4, 4, 4],
        vec![
            int("ceil_mode", 1),
            ints("kernel_shape", &[0, 2, 2]),
            ints("dilations", &[2, 2, 3]),
        ],
    ));
    assert!(e.contains("empty kernel"), "{e}");
    let e = malformed_message(&pool(&[1, 1, 4, 4], vec![ints("kernel_shape", &[-1, 2])]));
    assert!(e.contains("negative kernel_shape"), "{e}");
    let big = 1i64 << 40;
    for (strides, dil) in [([1, big], [1, 1]), ([1, 1], [big, 1]), ([0, 1], [1, 1])] {
        let e = malformed_message(&pool(
            &[1, 1, 4, 4],
            vec![
                ints("kernel_shape", &[2, 2]),
                ints("strides", &strides),
                ints("dilations", &dil),
            ],
        ));
        assert!(e.contains("must lie in 1..=2147483647"), "{e}");
    }
    // A huge kernel with a huge dilation under SAME padding: the effective
    // window overflows 64 bits.
    let e = malformed_message(&pool(
        &[1, 1, 4, 4],
        vec![
            string("auto_pad", "SAME_UPPER"),
            ints("kernel_shape", &[big, 2]),
            ints("dilations", &[i32::MAX as i64, 1]),
        ],
    ));
    assert_eq!(e, "node 'AveragePool_y': window geometry overflows");
}

/// A Split whose `num_outputs` claimed 2^40 parts allocated a size per part
/// before comparing with the node's outputs (an allocation abort, found by
/// the compile_onnx fuzz target); split sizes summing past 2^63 overflowed.
#[test]
fn split_with_hostile_sizes_is_refused() {
    use ember_tests::onnx::{int, ints, model, node, value, FLOAT};
    let split = |attr: pb::AttributeProto, opset: i64| {
        let mut n = node("Split", &["x"], "a", vec![attr]);
        n.output.push("b".into());
        model(
            pb::GraphProto {
                name: "g".into(),
                node: vec![n],
                input: vec![value("x", FLOAT, &[4, 2])],
                output: vec![value("a", FLOAT, &[]), value("b", FLOAT, &[])],
                ..Default::default()
            },
            opset,
        )
    };
    assert_eq!(
        malformed_message(&split(int("num_outputs", 1 << 40), 18)),
        "node 'Split_a': num_outputs 1099511627776 but 2 outputs"
    );
    let e = malformed_message(&split(ints("split", &[i64::MAX, i64::MAX]), 11));
    assert!(
        e.contains("do not divide axis 0 of extent 4 into 2 outputs"),
        "{e}"
    );
}

/// ConvInteger and MatMulInteger with a scalar B, or with a zero-point
/// count that is neither 1 nor B's channels, indexed past the end (found by
/// the compile_onnx fuzz target on an edited node test).
#[test]
fn integer_ops_with_malformed_b_are_refused() {
    use ember_tests::onnx::{integers, model, node, value, INT8};
    let graph = |op: &str, x: &[i64], w: &[i64], wz: &[i64]| {
        let n: i64 = w.iter().product();
        model(
            pb::GraphProto {
                name: "g".into(),
                node: vec![node(op, &["x", "w", "", "wz"], "y", vec![])],
                input: vec![value("x", INT8, x)],
                initializer: vec![
                    integers("w", INT8, w, vec![1; n as usize]),
                    integers("wz", INT8, &[wz.len() as i64], wz.to_vec()),
                ],
                output: vec![value("y", ember_tests::onnx::INT32, &[])],
                ..Default::default()
            },
            13,
        )
    };
    let e = compile(
        &graph("ConvInteger", &[1, 1, 4, 4], &[], &[0]),
        &Options::default(),
    )
    .expect_err("refused")
    .to_string();
    assert!(e.contains("B of shape [] (4-D for ConvInteger"), "{e}");
    let e = compile(
        &graph("MatMulInteger", &[2, 3], &[3, 4], &[0, 0]),
        &Options::default(),
    )
    .expect_err("refused")
    .to_string();
    assert!(e.contains("2 zero points for B of shape [3, 4]"), "{e}");
}

/// LpPool multiplied its kernel sizes unchecked (an overflow panic found
/// by the compile_onnx fuzz target); a kernel must be positive and its
/// window countable.
#[test]
fn lp_pool_with_an_overflowing_window_is_refused() {
    use ember_tests::onnx::{ints, model, node, value, FLOAT};
    for k in [[1i64 << 40, 1 << 40], [0, 2]] {
        let bytes = model(
            pb::GraphProto {
                name: "g".into(),
                node: vec![node("LpPool", &["x"], "y", vec![ints("kernel_shape", &k)])],
                input: vec![value("x", FLOAT, &[1, 1, 4, 4])],
                output: vec![value("y", FLOAT, &[])],
                ..Default::default()
            },
            13,
        );
        assert_eq!(
            malformed_message(&bytes),
            format!(
                "node 'LpPool_y': kernel_shape {k:?} must be positive with a product below 2^63"
            )
        );
    }
}

/// A Slice of a rank-7 activation wrote past the kernel's 6-axis step
/// array (found by the compile_onnx fuzz target); such a slice is now
/// refused by rank, as every rank above 6 is.
#[test]
fn slice_of_rank_seven_is_refused() {
    use ember_tests::onnx::{integers, model, node, value, FLOAT, INT64};
    let dims = [1i64, 2, 1, 2, 1, 2, 2];
    let bytes = model(
        pb::GraphProto {
            name: "g".into(),
            node: vec![
                node("Relu", &["x"], "r", vec![]),
                node("Slice", &["r", "s", "e", "a"], "y", vec![]),
            ],
            input: vec![value("x", FLOAT, &dims)],
            initializer: vec![
                integers("s", INT64, &[1], vec![0]),
                integers("e", INT64, &[1], vec![1]),
                integers("a", INT64, &[1], vec![1]),
            ],
            output: vec![value("y", FLOAT, &[])],
            ..Default::default()
        },
        13,
    );
    let e = compile(&bytes, &Options::default())
        .expect_err("refused")
        .to_string();
    assert!(
        e.contains("a slice of rank 7 (Ember supports at most 6"),
        "{e}"
    );
}
