//! `ember`: compile ONNX models, run and inspect compiled models.

mod calibration;
mod embed;
mod keys;
mod listen;
mod see;
mod wordpiece;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use ember_cli::{inspect, npy};
use ember_compiler::select::Target;
use ember_compiler::{AlignedBlob, Options};
use ember_runtime::{Interpreter, Model, Rounding};

/// `println!` that hands a write error back instead of panicking: a closed
/// pipe (`ember --list-ops | head`) ends the command quietly.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($t)*)?
    }};
}

#[derive(Parser)]
#[command(
    name = "ember",
    version,
    about = "Ember: compile ONNX models for edge boards and run them",
    arg_required_else_help = true
)]
struct Cli {
    /// Print every ONNX operator the compiler accepts, one per line, with
    /// the data types and attributes supported.
    #[arg(long)]
    list_ops: bool,
    /// The most memory a command may use for its inputs and buffers, e.g.
    /// 512M or 4G (checked before each allocation).
    #[arg(long, global = true, default_value = "2G")]
    max_memory: String,
    /// No progress bars and no notes on stderr (errors and warnings still
    /// print). Bars are drawn only when stderr is a terminal anyway.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Compile an ONNX model into an Ember blob.
    Compile {
        /// The ONNX model.
        model: PathBuf,
        /// Output blob path.
        #[arg(short, long)]
        output: PathBuf,
        /// Target core: generic, reference (reference kernels only),
        /// cortex-m4, cortex-m7, cortex-m33, cortex-m55, cortex-a53, cortex-a76.
        #[arg(long, default_value = "generic")]
        target: String,
        /// Requantization semantics: tflite (fixed point, half away from
        /// zero) or onnx (float scale, half to even). Default: from the
        /// model's producer.
        #[arg(long)]
        rounding: Option<String>,
        /// Fix a symbolic input shape, e.g. --shape input_ids=1x128.
        #[arg(long = "shape")]
        shapes: Vec<String>,
        /// Leave out the int16 filter copies of the cortex-m4/m7/m33 and
        /// cortex-a targets: a smaller blob, slower convolutions.
        #[arg(long)]
        no_packed_weights: bool,
        /// Keep state between invokes: OUTPUT=INPUT feeds the output back
        /// into the input on the next frame (repeatable; e.g. --state
        /// h_out=h_in), `auto` pairs the names common exports use.
        #[arg(long = "state", value_name = "OUTPUT=INPUT|auto")]
        state: Vec<String>,
        /// Turn a model that slides a window over time into one that takes
        /// one new frame per invoke and computes only what it changes
        /// (ring buffers kept as state). The time axis is found from the
        /// input's shape, or given with --stream-axis.
        #[arg(long)]
        stream: bool,
        /// The input's time axis for --stream.
        #[arg(long, requires = "stream", value_name = "N")]
        stream_axis: Option<usize>,
        #[command(flatten)]
        quant: QuantArgs,
    },
    /// Quantize a float ONNX model into a QDQ ONNX model (int8 weights per
    /// channel, int8 activations calibrated on samples) that onnxruntime
    /// and other tools run, and `ember compile` compiles to integer kernels.
    Quantize {
        /// The float ONNX model.
        model: PathBuf,
        /// Where to write the QDQ ONNX model.
        #[arg(short, long)]
        output: PathBuf,
        /// Calibration samples: an .npy with samples along its first axis
        /// (`[N, d1, …]` for an input `[1, d1, …]`), an .npz of such arrays
        /// keyed by input name, or a folder of .npy, .wav or .png files
        /// (run through the front end of `ember listen` / `ember see`).
        #[arg(long, value_name = "CAL")]
        calibrate: PathBuf,
        /// Fix a symbolic input shape, e.g. --shape input=1x49x10x1.
        #[arg(long = "shape")]
        shapes: Vec<String>,
        #[command(flatten)]
        how: QuantHow,
    },
    /// Run a compiled model (or an ONNX file, compiled on the fly).
    Run {
        /// The model (.ember or .onnx).
        model: PathBuf,
        /// Input .npy files, in graph input order.
        #[arg(short, long = "input", required = true)]
        inputs: Vec<PathBuf>,
        /// Where to save the outputs (.npy for one output, .npz for any
        /// number, keyed by output name).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Run float inputs holding NaN or infinity (refused by default:
        /// they give plausible-looking garbage).
        #[arg(long)]
        allow_nonfinite: bool,
        /// Each input is a whole recording: feed it one frame at a time
        /// (state kept between frames) and stack each frame's outputs
        /// along a new first axis. The time axis is the one where the
        /// recording is longer than the input.
        #[arg(long)]
        stream: bool,
        /// The inputs' time axis, when the shapes do not tell.
        #[arg(long, requires = "stream", value_name = "N")]
        stream_axis: Option<usize>,
    },
    /// Recognise the keyword in a 16 kHz WAV clip, detect a wake word along a longer recording, or find where there is speech (audio front end + model).
    Listen {
        /// The audio model (.ember or .onnx): keyword spotting, wake word,
        /// or voice activity (raw audio in, state kept).
        model: PathBuf,
        /// The WAV file (16-bit PCM, 16 kHz; channel 0 is used).
        wav: PathBuf,
        /// Print `{"label", "score"}` JSON.
        #[arg(long)]
        json: bool,
    },
    /// Classify a PNG image with a vision model (crop, resize, normalise, quantize + model).
    See {
        /// The vision model (.ember or .onnx), NHWC RGB input.
        model: PathBuf,
        /// The image (PNG; any size: centre-cropped to the model's aspect ratio and resized).
        image: PathBuf,
        /// Class labels, comma-separated (default: the zoo entry's).
        #[arg(long, value_delimiter = ',')]
        labels: Option<Vec<String>>,
        /// Pixel normalisation, value = pixel × SCALE (default: the zoo entry's).
        #[arg(long)]
        pixel_scale: Option<f32>,
        /// Print `{"label", "score"}` JSON.
        #[arg(long)]
        json: bool,
    },
    /// Embed one text, or compare two, with a sentence-embedding model
    /// (WordPiece tokenizer + model + mean pooling), e.g. all-MiniLM-L6-v2.
    Embed {
        /// The model (.ember or .onnx) with int32 inputs input_ids,
        /// attention_mask (and token_type_ids) of shape [1, S].
        model: PathBuf,
        /// The WordPiece vocabulary (vocab.txt: one token per line).
        #[arg(long)]
        vocab: PathBuf,
        /// One text, or two to compare (cosine similarity).
        #[arg(required = true, num_args = 1..=2)]
        texts: Vec<String>,
        /// Print `{"embedding": [...]}` JSON (two texts:
        /// `{"embeddings": [[...], [...]], "cosine": x}`).
        #[arg(long)]
        json: bool,
    },
    /// Print every ONNX operator the compiler accepts (same as --list-ops).
    ListOps,
    /// Make an Ed25519 key pair for signing blobs: KEY (secret, mode 600)
    /// and KEY.pub (what the firmware is built with, EMBER_MODEL_PUBKEY).
    Keygen {
        /// The secret key file to create.
        key: PathBuf,
    },
    /// Append an Ed25519 signature to a compiled blob (replacing any).
    Sign {
        /// The blob (.ember).
        model: PathBuf,
        /// The secret key file (from `ember keygen`).
        #[arg(long)]
        key: PathBuf,
        /// Where to write the signed blob (default: over MODEL).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Check a signed blob's signature, then the blob, as a firmware built
    /// with the public key would.
    Verify {
        /// The signed blob.
        model: PathBuf,
        /// The public key file (KEY.pub from `ember keygen`).
        #[arg(long)]
        pubkey: PathBuf,
    },
    /// Write one self-contained HTML page about a model: summary, graph,
    /// arena plan, per-layer bars and flash (with per-board instructions,
    /// flash and RAM from `cargo xtask bench --json` results).
    Report {
        /// The model (.ember or .onnx).
        model: PathBuf,
        /// `cargo xtask bench --json` output for this model (repeatable).
        #[arg(long)]
        bench: Vec<PathBuf>,
        /// The HTML file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Show a compiled model layer by layer.
    Inspect {
        /// The model (.ember or .onnx).
        model: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`| head`): nothing more to say.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn parse_rounding(s: &str) -> Result<Rounding> {
    match s {
        "tflite" => Ok(Rounding::TfliteFixedPoint),
        "onnx" => Ok(Rounding::OnnxFloat),
        other => bail!("unknown rounding '{other}' (expected tflite or onnx)"),
    }
}

fn parse_shape(s: &str) -> Result<(String, Vec<usize>)> {
    let (name, dims) = s
        .rsplit_once('=')
        .with_context(|| format!("--shape '{s}' must look like NAME=1x128"))?;
    let dims = dims
        .split('x')
        .map(|d| {
            d.parse::<usize>()
                .with_context(|| format!("--shape '{s}': '{d}' is not a dimension"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((name.to_string(), dims))
}

/// The model's arena, refused with a one-line error when the blob asks for
/// more than the memory budget (a blob may declare up to 4 GiB) or the
/// memory is not there.
pub(crate) fn arena_for(m: &Model<'_>) -> Result<AlignedBlob> {
    let n = m.arena_bytes();
    ember_cli::limits::check("the model's arena", n as u64)?;
    ember_compiler::try_aligned_arena(n)
        .with_context(|| format!("cannot allocate the model's {n}-byte arena"))
}

/// An informational line on stderr, unless `--quiet`.
pub(crate) fn note(text: &str) {
    if !ember_cli::progress::quiet() {
        eprintln!("{text}");
    }
}

/// Loads a blob from a `.ember` file, or compiles an `.onnx` file in memory.
pub(crate) fn load_blob(path: &Path) -> Result<AlignedBlob> {
    ember_cli::limits::check_file(path)?;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if path.extension().and_then(|e| e.to_str()) == Some("onnx") {
        note(&format!("compiling {} ...", path.display()));
        let opts = Options {
            max_memory: Some(ember_cli::limits::max_memory()),
            progress: Some(ember_cli::progress::compiler_progress()),
            ..Default::default()
        };
        let c = ember_compiler::compile(&bytes, &opts)
            .with_context(|| format!("{}", path.display()))?;
        return Ok(AlignedBlob::new(&c.blob));
    }
    Ok(AlignedBlob::new(&bytes))
}

/// The model in `blob` (read from `path`), its arena plan checked too:
/// nothing runs in `inspect` or `report`, but they vouch for the whole blob
/// (scratch: one bit per 16 arena bytes).
fn checked_model<'a>(blob: &'a AlignedBlob, path: &Path) -> Result<Model<'a>> {
    let m = Model::load(blob.bytes()).with_context(|| format!("{}", path.display()))?;
    m.check_arena_plan(&mut vec![0; m.arena_plan_scratch_bytes()])
        .with_context(|| format!("{}", path.display()))?;
    Ok(m)
}

/// `ember --list-ops`: the compiler's operator table, one operator a line:
/// its ONNX `op_type`, the data types, `|`, the attributes and forms.
fn list_ops() -> Result<()> {
    let ops = ember_compiler::supported_ops();
    let w = ops
        .iter()
        .map(|o| o.qualified_name().len())
        .max()
        .unwrap_or(0);
    for o in &ops {
        say!("{:<w$}  {}  |  {}", o.qualified_name(), o.dtypes, o.attrs);
    }
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    ember_cli::limits::set_max_memory(ember_cli::limits::parse_size(&cli.max_memory)?);
    ember_cli::progress::set_quiet(cli.quiet);
    let cmd = match (cli.cmd, cli.list_ops) {
        (Some(_), true) => bail!("--list-ops takes no subcommand (or use `ember list-ops`)"),
        (Some(cmd), false) => cmd,
        // Without a subcommand, clap has shown the help unless an option
        // was given: --list-ops, or only global ones.
        (None, true) => {
            return list_ops();
        }
        (None, false) => bail!("no command given (see ember --help)"),
    };
    // JSON is for scripts: no bars beside it, terminal or not (notes stay
    // on stderr).
    if matches!(
        &cmd,
        Cmd::Listen { json: true, .. }
            | Cmd::See { json: true, .. }
            | Cmd::Embed { json: true, .. }
            | Cmd::Inspect { json: true, .. }
    ) {
        ember_cli::progress::hide_bars();
    }
    match cmd {
        Cmd::ListOps => list_ops(),
        Cmd::Compile {
            model,
            output,
            target,
            rounding,
            shapes,
            no_packed_weights,
            state,
            stream,
            stream_axis,
            quant,
        } => {
            let target: Target = target.parse().map_err(anyhow::Error::msg)?;
            let mut opts = Options {
                target,
                rounding: rounding.as_deref().map(parse_rounding).transpose()?,
                no_packed_weights,
                max_memory: Some(ember_cli::limits::max_memory()),
                progress: Some(ember_cli::progress::compiler_progress()),
                ..Default::default()
            };
            for s in &shapes {
                let (n, d) = parse_shape(s)?;
                opts.input_shapes.insert(n, d);
            }
            for s in &state {
                opts.state.add(s).map_err(anyhow::Error::msg)?;
            }
            if stream {
                opts.stream = Some(match stream_axis {
                    Some(a) => ember_compiler::stream::StreamAxis::Axis(a),
                    None => ember_compiler::stream::StreamAxis::Auto,
                });
            }
            let t0 = Instant::now();
            let c = match quant.quantize.as_deref() {
                None => {
                    if quant.calibrate.is_some() || quant.how.sqnr_target.is_some() {
                        bail!("--calibrate and --sqnr-target need --quantize int8 or mixed");
                    }
                    note(&format!("compiling {} for {target} ...", model.display()));
                    ember_compiler::compile_file(&model, &opts)?
                }
                Some(how @ ("int8" | "mixed")) => {
                    let Some(cal) = &quant.calibrate else {
                        bail!("--quantize {how} needs calibration samples: --calibrate CAL");
                    };
                    match (how, quant.how.sqnr_target) {
                        ("mixed", None) => bail!(
                            "--quantize mixed needs the SQNR the model must keep: --sqnr-target DB"
                        ),
                        ("int8", Some(_)) => bail!(
                            "--sqnr-target chooses precisions per layer: it needs --quantize mixed"
                        ),
                        _ => {}
                    }
                    let q = quantize_model(&model, cal, &quant.how, &opts.input_shapes)?;
                    note(&format!("compiling the quantized model for {target} ..."));
                    ember_compiler::compile(&q.onnx, &opts)?
                }
                Some(other) => bail!(
                    "--quantize {other}: Ember quantizes to int8, or mixed (int8 and float per layer, with --sqnr-target); 16x8 is not built yet"
                ),
            };
            if let Some(r) = &c.stream {
                note(&stream_note(r));
            }
            std::fs::write(&output, &c.blob)
                .with_context(|| format!("cannot write {}", output.display()))?;
            note(&format!(
                "wrote {} ({} bytes, arena {} bytes, {} rounding) in {:.1} s",
                output.display(),
                c.blob.len(),
                c.arena_bytes,
                c.rounding.name(),
                t0.elapsed().as_secs_f64()
            ));
            Ok(())
        }
        Cmd::Quantize {
            model,
            output,
            calibrate,
            shapes,
            how,
        } => {
            let mut input_shapes = std::collections::HashMap::new();
            for s in &shapes {
                let (n, d) = parse_shape(s)?;
                input_shapes.insert(n, d);
            }
            let q = quantize_model(&model, &calibrate, &how, &input_shapes)?;
            print!("{}", ember_cli::quant_report::table(&q.report));
            std::fs::write(&output, &q.onnx)
                .with_context(|| format!("cannot write {}", output.display()))?;
            note(&format!(
                "wrote {} ({} bytes)",
                output.display(),
                q.onnx.len()
            ));
            Ok(())
        }
        Cmd::Run {
            model,
            inputs,
            output,
            allow_nonfinite,
            stream,
            stream_axis,
        } => {
            let blob = load_blob(&model)?;
            let m = Model::load(blob.bytes()).with_context(|| format!("{}", model.display()))?;
            if stream {
                return run_stream(&m, &inputs, output.as_deref(), stream_axis, allow_nonfinite);
            }
            if inputs.len() != m.num_inputs() {
                bail!(
                    "the model has {} inputs, {} given",
                    m.num_inputs(),
                    inputs.len()
                );
            }
            let mut arena = arena_for(&m)?;
            let mut interp = Interpreter::new(&m, arena.bytes_mut())?;
            for (i, p) in inputs.iter().enumerate() {
                let info = m.input_info(i)?;
                npy::read_into(p, &info, &mut interp.input_mut(i)?, allow_nonfinite)
                    .with_context(|| format!("input {}", p.display()))?;
            }
            // One op at a time on a bar (a float transformer runs for
            // seconds on the host).
            let bar = ember_cli::progress::bar(m.num_ops() as u64, "running");
            interp.invoke_with_hook(|ev| {
                if ev.done {
                    bar.set_message(ev.name.to_string());
                    bar.inc(1);
                }
            })?;
            bar.finish_and_clear();
            let outs: Vec<_> = (0..m.num_outputs())
                .map(|i| interp.output(i))
                .collect::<Result<_, _>>()?;
            match output {
                Some(p) => npy::write_outputs(&p, &outs)?,
                None => {
                    for o in &outs {
                        say!("{}", npy::format_output(o)?);
                    }
                }
            }
            Ok(())
        }
        Cmd::See {
            model,
            image,
            labels,
            pixel_scale,
            json,
        } => {
            let blob = load_blob(&model)?;
            let m = Model::load(blob.bytes()).with_context(|| format!("{}", model.display()))?;
            let opts = see::SeeOptions {
                labels,
                pixel_scale,
            };
            let s = see::see(&m, &image, &opts)?;
            if json {
                say!(
                    "{}",
                    serde_json::json!({"label": s.label, "score": s.score})
                );
            } else {
                say!("{} ({:.2})", s.label, s.score);
            }
            Ok(())
        }
        Cmd::Listen { model, wav, json } => {
            let blob = load_blob(&model)?;
            let m = Model::load(blob.bytes()).with_context(|| format!("{}", model.display()))?;
            match listen::listen_any(&m, &wav)? {
                listen::Listened::Clip(h) => {
                    if json {
                        say!(
                            "{}",
                            serde_json::json!({"label": h.label, "score": h.score})
                        );
                    } else {
                        say!("{} ({:.2})", h.label, h.score);
                    }
                }
                listen::Listened::Stream(d) => {
                    if json {
                        let list: Vec<_> = d
                            .iter()
                            .map(|e| {
                                // Milliseconds are the resolution that means something here.
                                let t = (e.time_s as f64 * 1000.0).round() / 1000.0;
                                serde_json::json!({"time_s": t, "score": e.score})
                            })
                            .collect();
                        say!("{}", serde_json::json!({ "detections": list }));
                    } else if d.is_empty() {
                        say!("no wake word");
                    } else {
                        for e in &d {
                            say!("wake word at {:.3} s ({:.2})", e.time_s, e.score);
                        }
                    }
                }
                listen::Listened::Speech(segs) => {
                    if json {
                        let list: Vec<_> = segs
                            .iter()
                            .map(
                                |s| serde_json::json!({"start_s": s.start_s(), "end_s": s.end_s()}),
                            )
                            .collect();
                        say!("{}", serde_json::json!({ "speech": list }));
                    } else if segs.is_empty() {
                        say!("no speech");
                    } else {
                        for s in &segs {
                            say!("speech {:.3} s to {:.3} s", s.start_s(), s.end_s());
                        }
                    }
                }
            }
            Ok(())
        }
        Cmd::Embed {
            model,
            vocab,
            texts,
            json,
        } => {
            let vocab = wordpiece::WordPiece::from_file(&vocab)?;
            let blob = load_blob(&model)?;
            let m = Model::load(blob.bytes()).with_context(|| format!("{}", model.display()))?;
            let embs = embed::embed(&m, &vocab, &texts)?;
            for (i, e) in embs.iter().enumerate() {
                if e.truncated() {
                    eprintln!(
                        "warning: text {} has {} tokens; truncated to the model's {}",
                        i + 1,
                        e.full_tokens,
                        e.tokens
                    );
                }
            }
            if json {
                say!("{}", embed::json(&embs)?);
            } else {
                say!("{}", embed::text(&embs)?);
            }
            Ok(())
        }
        Cmd::Keygen { key } => {
            let public = keys::keygen(&key)?;
            say!(
                "wrote {} (secret: keep it off the device) and {}",
                key.display(),
                public.display()
            );
            Ok(())
        }
        Cmd::Sign { model, key, output } => {
            let out = keys::sign(&model, &key, output.as_deref())?;
            say!("signed {}", out.display());
            Ok(())
        }
        Cmd::Verify { model, pubkey } => {
            keys::verify(&model, &pubkey)?;
            say!("{}: signature and blob valid", model.display());
            Ok(())
        }
        Cmd::Report {
            model,
            bench,
            output,
        } => {
            let blob = load_blob(&model)?;
            let m = checked_model(&blob, &model)?;
            let mut runs = vec![];
            for b in &bench {
                ember_cli::limits::check_file(b)?;
                let text = std::fs::read_to_string(b)
                    .with_context(|| format!("cannot read {}", b.display()))?;
                runs.extend(
                    ember_cli::report::parse_bench(&text)
                        .with_context(|| format!("{}", b.display()))?,
                );
            }
            let title = model
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            let page = ember_cli::report::html(&m, &title, &runs)?;
            std::fs::write(&output, page)
                .with_context(|| format!("cannot write {}", output.display()))?;
            say!("wrote {}", output.display());
            Ok(())
        }
        Cmd::Inspect { model, json } => {
            let blob = load_blob(&model)?;
            let m = checked_model(&blob, &model)?;
            if json {
                say!("{}", inspect::json(&m)?);
            } else {
                print!("{}", inspect::table(&m)?);
            }
            Ok(())
        }
    }
}

/// `ember run --stream`: every input a recording, fed a frame at a time.
fn run_stream(
    m: &Model<'_>,
    inputs: &[PathBuf],
    output: Option<&std::path::Path>,
    axis: Option<usize>,
    allow_nonfinite: bool,
) -> Result<()> {
    if inputs.len() != m.num_inputs() {
        bail!(
            "the model has {} inputs, {} given",
            m.num_inputs(),
            inputs.len()
        );
    }
    let recordings = inputs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            npy::read_for(p, &m.input_info(i)?).with_context(|| format!("input {}", p.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut arena = arena_for(m)?;
    let mut interp = Interpreter::new(m, arena.bytes_mut())?;
    let bar = ember_cli::progress::bar(0, "frames");
    let opts = ember_cli::stream::StreamOptions {
        axis,
        allow_nonfinite,
        budget: (ember_cli::limits::max_memory() as u64, "--max-memory"),
    };
    let outs =
        ember_cli::stream::run_stream(&mut interp, &recordings, &opts, &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })?;
    bar.finish_and_clear();
    match output {
        Some(p) => npy::write_arrays(p, &outs)?,
        None => {
            for (name, a) in &outs {
                say!("{name}: {} {:?}", a.dtype_name(), a.shape());
                say!("{}", a.to_text());
            }
        }
    }
    Ok(())
}

/// What `compile --stream` did, in a few lines.
fn stream_note(r: &ember_compiler::stream::StreamReport) -> String {
    let mut s = format!(
        "streaming input '{}' along axis {}: one frame per invoke, outputs match the \
         windowed model's after {} frames; {} ops per frame, {} bytes of ring buffers",
        r.input,
        r.axis,
        r.window,
        r.per_frame.len(),
        r.state_bytes
    );
    for (op, why) in &r.whole_window {
        s.push_str(&format!("\n  {op} runs on the whole window: it {why}"));
    }
    s
}

/// `ember compile`'s quantization flags.
#[derive(clap::Args, Debug)]
struct QuantArgs {
    /// Quantize a float model before compiling it: int8 (weights per
    /// output channel for convolutions and per tensor for dense layers,
    /// activations calibrated with --calibrate), or mixed (int8, with the
    /// layers --sqnr-target needs left in float).
    #[arg(long, value_name = "int8|mixed")]
    quantize: Option<String>,
    /// Calibration samples for --quantize: an .npy with samples along its
    /// first axis, an .npz keyed by input name, or a folder of .npy, .wav
    /// or .png files.
    #[arg(long, value_name = "CAL")]
    calibrate: Option<PathBuf>,
    #[command(flatten)]
    how: QuantHow,
}

/// How to quantize (`ember compile --quantize` and `ember quantize`).
#[derive(clap::Args, Debug)]
struct QuantHow {
    /// How activation ranges are chosen: auto, minmax, percentile, mse,
    /// entropy.
    #[arg(long, default_value = "auto", value_name = "METHOD")]
    calibration_method: String,
    /// Keep the biases as they are (by default they are corrected for the
    /// mean shift the weights' rounding causes, given 16 samples or more).
    #[arg(long)]
    no_bias_correction: bool,
    /// A weight scale per output channel for dense layers too (default: one
    /// per tensor, as TFLite's fully connected kernels take: faster, a
    /// little less exact).
    #[arg(long)]
    per_channel_dense: bool,
    /// int8 inputs and outputs (scale and zero point in the blob, as a
    /// converter's int8 model has) instead of float ones converted at the
    /// model's edges.
    #[arg(long)]
    int8_io: bool,
    /// Mixed precision: leave in float the fewest multiply-accumulates
    /// that keep the model's outputs this many dB SQNR from the float
    /// model's on the calibration samples (a sensitivity sweep, layer
    /// group by layer group); the rest is int8.
    #[arg(long, value_name = "DB")]
    sqnr_target: Option<f64>,
    /// Also write what quantization did as JSON (ranges, scales, weights).
    #[arg(long, value_name = "FILE.json")]
    report: Option<PathBuf>,
}

/// Quantizes the float ONNX `model` on the samples at `cal`; prints a
/// summary and writes the JSON report when asked.
fn quantize_model(
    model: &Path,
    cal: &Path,
    how: &QuantHow,
    shapes: &std::collections::HashMap<String, Vec<usize>>,
) -> Result<ember_compiler::quantize::Quantized> {
    let method = how.calibration_method.as_str();
    use ember_compiler::quantize::{quantize, QuantizeOptions, RangeMethod};
    let Some(method) = RangeMethod::parse(method) else {
        let names: Vec<&str> = RangeMethod::ALL.iter().map(|(n, _)| *n).collect();
        bail!("--calibration-method {method}: one of {}", names.join(", "));
    };
    if let Some(t) = how.sqnr_target.filter(|t| !t.is_finite() || *t <= 0.0) {
        bail!("--sqnr-target {t}: a positive number of dB, e.g. 40");
    }
    let samples = calibration::load(cal, model, shapes)?;
    ember_cli::limits::check_file(model)?;
    let onnx = std::fs::read(model).with_context(|| format!("cannot read {}", model.display()))?;
    note(&format!(
        "quantizing {} to {} on {} calibration samples ...",
        model.display(),
        match how.sqnr_target {
            Some(t) => format!("int8 and float for {t} dB"),
            None => "int8".into(),
        },
        samples.samples()
    ));
    let q = quantize(
        &onnx,
        &samples,
        &QuantizeOptions {
            method,
            progress: Some(ember_cli::progress::compiler_progress()),
            no_bias_correction: how.no_bias_correction,
            per_channel_dense: how.per_channel_dense,
            int8_io: how.int8_io,
            sqnr_target: how.sqnr_target,
        },
    )?;
    note(&ember_cli::quant_report::summary(&q.report));
    if let Some(p) = &how.report {
        let j = ember_cli::quant_report::json(&q.report);
        std::fs::write(p, serde_json::to_string_pretty(&j)? + "\n")
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(q)
}
