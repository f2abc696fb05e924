//! The HTML report (`ember report`, `cargo xtask bench --html`) written
//! for bench runs, and checked in headless Chromium: the page Chromium
//! parsed must show one arena box per planned tensor, no two boxes sharing
//! bytes while both are live, and per-layer bars equal to `ember inspect
//! --json` (and to the bench's instructions); Chromium must log nothing
//! from the page. `cargo xtask report-check` does it for kws with M55 and
//! M4 results and for MiniLM, and saves screenshots.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use ember_compiler::AlignedBlob;
use ember_runtime::format::Storage;
use ember_runtime::Model;

use crate::bench::Measurement;
use crate::setup::{apt_install, on_path};
use crate::{boards, root, shared, step};

/// The page for one model's bench rows (one per board).
pub(crate) fn page_for(rows: &[&Measurement]) -> Result<String> {
    let first = rows.first().context("no bench rows")?;
    let blob = AlignedBlob::new(&first.blob);
    let m = Model::load(blob.bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut runs = vec![];
    for r in rows {
        runs.extend(ember_cli::report::parse_bench(&r.json().to_string())?);
    }
    ember_cli::report::html(&m, &first.model, &runs)
}

/// Writes the report of each model in `rows` to `out` (one model), or to
/// `out` with `-MODEL` before the extension (several); returns the paths.
pub(crate) fn write_pages(rows: &[Measurement], out: &Path) -> Result<Vec<PathBuf>> {
    let mut by_model: BTreeMap<&str, Vec<&Measurement>> = BTreeMap::new();
    for r in rows {
        by_model.entry(&r.model).or_default().push(r);
    }
    let mut paths = vec![];
    for (model, rs) in &by_model {
        let path = if by_model.len() == 1 {
            out.to_path_buf()
        } else {
            let stem = out.file_stem().and_then(|s| s.to_str()).unwrap_or("report");
            out.with_file_name(format!("{stem}-{model}.html"))
        };
        std::fs::write(&path, page_for(rs)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        paths.push(path);
    }
    Ok(paths)
}

/// The Chromium binary, installed through apt when missing.
fn chromium() -> Result<&'static str> {
    for b in ["chromium", "chromium-browser"] {
        if on_path(b) {
            return Ok(b);
        }
    }
    apt_install(&["chromium"])?;
    Ok("chromium")
}

fn headless(bin: &str) -> Command {
    let mut c = Command::new(bin);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        // Containers often have a small /dev/shm.
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
    ]);
    c
}

/// The page as Chromium parsed it, and what Chromium logged from it.
fn chromium_dom(bin: &str, page: &Path) -> Result<(String, Vec<String>)> {
    let url = format!("file://{}", page.canonicalize()?.display());
    let out = headless(bin)
        .args(["--dump-dom", &url])
        .output()
        .with_context(|| format!("cannot run {bin}"))?;
    if !out.status.success() {
        bail!("{bin} --dump-dom {url} failed ({})", out.status);
    }
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("CONSOLE"))
        .map(str::to_string)
        .collect();
    Ok((String::from_utf8_lossy(&out.stdout).to_string(), console))
}

/// The `data-*` attributes of every element whose start tag begins with
/// `start` (e.g. `<rect class="tensor`), as maps.
fn elements(dom: &str, start: &str) -> Vec<BTreeMap<String, String>> {
    let mut v = vec![];
    let mut rest = dom;
    while let Some(i) = rest.find(start) {
        let tag = &rest[i..];
        let end = tag.find('>').unwrap_or(tag.len());
        let mut attrs = BTreeMap::new();
        let mut t = &tag[..end];
        while let Some(j) = t.find(" data-") {
            t = &t[j + 6..];
            let Some(eq) = t.find("=\"") else { break };
            let key = t[..eq].to_string();
            let val_start = eq + 2;
            let Some(close) = t[val_start..].find('"') else {
                break;
            };
            attrs.insert(key, t[val_start..val_start + close].to_string());
            t = &t[val_start + close..];
        }
        v.push(attrs);
        rest = &tag[end..];
    }
    v
}

fn num(a: &BTreeMap<String, String>, k: &str) -> Result<u64> {
    a.get(k)
        .with_context(|| format!("element without data-{k}: {a:?}"))?
        .parse::<f64>()
        .map(|v| v as u64)
        .with_context(|| format!("data-{k} is not a number: {a:?}"))
}

/// Opens `page` (the report of `blob`) in headless Chromium and checks it
/// against the planner, `inspect --json` and `bench`; saves a screenshot to
/// `shot` (`height` pixels of a 1400-pixel-wide window).
pub(crate) fn check_page(
    page: &Path,
    blob: &[u8],
    bench: &[&Measurement],
    shot: &Path,
    height: u32,
) -> Result<()> {
    let bin = chromium()?;
    let (dom, console) = chromium_dom(bin, page)?;
    if !console.is_empty() {
        bail!(
            "{}: the page logged:\n{}",
            page.display(),
            console.join("\n")
        );
    }
    let aligned = AlignedBlob::new(blob);
    let m = Model::load(aligned.bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    // One box per planned tensor, at its planned place.
    let mut planned = BTreeMap::new();
    for t in 0..m.num_tensors() as u32 {
        let i = m.tensor(t).map_err(|e| anyhow::anyhow!("{e}"))?;
        if let (Storage::Arena, Some((from, to)), None) = (i.storage, i.live, i.alias_of) {
            planned.insert(
                t as u64,
                (from as u64, to as u64, i.offset as u64, i.size as u64),
            );
        }
    }
    let boxes = elements(&dom, "<rect class=\"tensor");
    if boxes.len() != planned.len() {
        bail!(
            "{}: {} arena boxes for {} planned tensors",
            page.display(),
            boxes.len(),
            planned.len()
        );
    }
    let mut seen = vec![];
    for b in &boxes {
        let t = num(b, "tensor")?;
        let got = (
            num(b, "from")?,
            num(b, "to")?,
            num(b, "offset")?,
            num(b, "bytes")?,
        );
        if planned.get(&t) != Some(&got) {
            bail!(
                "{}: tensor {t}'s box {got:?} is not its plan {:?}",
                page.display(),
                planned.get(&t)
            );
        }
        seen.push((t, got));
    }
    for (i, (ta, a)) in seen.iter().enumerate() {
        for (tb, b) in &seen[i + 1..] {
            let live = a.0 <= b.1 && b.0 <= a.1;
            let bytes = a.2 < b.2 + b.3 && b.2 < a.2 + a.3;
            if live && bytes {
                bail!(
                    "{}: the boxes of tensors {ta} and {tb} overlap in lifetime and bytes",
                    page.display()
                );
            }
        }
    }
    // The per-layer bars against `inspect --json` and the bench.
    let inspect: serde_json::Value = serde_json::from_str(&ember_cli::inspect::json(&m)?)?;
    let layers = inspect["layers"]
        .as_array()
        .context("inspect without layers")?;
    let macs = elements(&dom, "<div class=\"bar macs");
    let weights = elements(&dom, "<div class=\"bar weights");
    let instr = elements(&dom, "<div class=\"bar instr");
    if macs.len() != layers.len() || weights.len() != layers.len() {
        bail!(
            "{}: {} MAC bars and {} weight bars for {} layers",
            page.display(),
            macs.len(),
            weights.len(),
            layers.len()
        );
    }
    if instr.len() != layers.len() * bench.len() {
        bail!(
            "{}: {} instruction bars for {} layers on {} boards",
            page.display(),
            instr.len(),
            layers.len(),
            bench.len()
        );
    }
    for (i, l) in layers.iter().enumerate() {
        let want = (l["macs"].as_u64(), l["weight_bytes"].as_u64());
        let got = (num(&macs[i], "macs")?, num(&weights[i], "weight-bytes")?);
        if want != (Some(got.0), Some(got.1)) {
            bail!(
                "{}: layer {i}'s bars (MACs, weight bytes) {got:?}, inspect --json {want:?}",
                page.display()
            );
        }
        for (k, b) in bench.iter().enumerate() {
            let got = num(&instr[i * bench.len() + k], "instructions")?;
            let want = b.layers.get(i).map(|l| l.instructions);
            if want != Some(got) {
                bail!(
                    "{}: layer {i} on {}: bar {got} instructions, bench {want:?}",
                    page.display(),
                    b.board
                );
            }
        }
    }
    // Each board's code bar: one box per part, adding up to its code.
    for b in bench {
        let start = format!("<svg class=\"code\" data-board=\"{}\"", b.board);
        let Some(at) = dom.find(&start) else {
            bail!("{}: no code bar for {}", page.display(), b.board);
        };
        let svg = &dom[at..dom[at..].find("</svg>").map_or(dom.len(), |e| at + e)];
        let parts = elements(svg, "<rect");
        let sum: u64 = parts.iter().map(|p| num(p, "bytes")).sum::<Result<_>>()?;
        if parts.len() != b.size.code_by_part.len() || sum != b.size.code_bytes {
            bail!(
                "{}: {}'s code bar has {} parts of {sum} B, the ELF {} parts of {} B",
                page.display(),
                b.board,
                parts.len(),
                b.size.code_by_part.len(),
                b.size.code_bytes
            );
        }
    }
    let url = format!("file://{}", page.canonicalize()?.display());
    let st = headless(bin)
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("--window-size=1400,{height}"))
        .arg(&url)
        .output()
        .with_context(|| format!("cannot run {bin}"))?;
    if !st.status.success() || !shot.exists() {
        bail!("{bin} could not screenshot {url}");
    }
    eprintln!(
        "    {}: {} arena boxes = planned tensors, none overlapping; {} layers' bars = inspect --json{}; screenshot {}",
        page.display(),
        boxes.len(),
        layers.len(),
        if bench.is_empty() {
            String::new()
        } else {
            format!(" and {} boards' bench; code bars = the ELFs'", bench.len())
        },
        shot.display()
    );
    Ok(())
}

/// `cargo xtask report-check`: kws with bench results from the Cortex-M55
/// and Cortex-M4, and MiniLM (128 tokens, Cortex-A76), each written, opened
/// in headless Chromium, checked and screenshot into `out`.
pub(crate) fn report_check(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out)?;
    crate::setup::setup_qemu()?;
    step("report: kws benched on the Cortex-M55 and Cortex-M4, then its page checked in headless Chromium");
    let mut rows = vec![];
    for b in ["mps3-an547", "mps2-an386"] {
        let board = boards::find(b)?;
        crate::setup::setup_target(board.target)?;
        rows.push(crate::bench::measure(board, "kws", 0)?);
    }
    let page = out.join("kws.html");
    write_pages(&rows, &page)?;
    let refs: Vec<&Measurement> = rows.iter().collect();
    check_page(
        &page,
        &rows[0].blob,
        &refs,
        &out.join("report-kws.png"),
        3500,
    )?;
    step("report: MiniLM (128 tokens) checked in headless Chromium");
    let dir = shared().join("models/transformers/minilm");
    let mut opts = ember_compiler::Options {
        target: "cortex-a76".parse().map_err(anyhow::Error::msg)?,
        ..Default::default()
    };
    for input in ["input_ids", "attention_mask", "token_type_ids"] {
        opts.input_shapes.insert(input.to_string(), vec![1, 128]);
    }
    let c = ember_compiler::compile_file(dir.join("all-MiniLM-L6-v2_int8_dynamic.onnx"), &opts)
        .context("compiling MiniLM")?;
    let aligned = AlignedBlob::new(&c.blob);
    let m = Model::load(aligned.bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let page = out.join("minilm.html");
    std::fs::write(
        &page,
        ember_cli::report::html(&m, "all-MiniLM-L6-v2 (int8, 128 tokens)", &[])?,
    )?;
    check_page(&page, &c.blob, &[], &out.join("report-minilm.png"), 2200)?;
    Ok(())
}

/// Where `cargo xtask test` leaves the pages and screenshots.
pub(crate) fn default_out() -> PathBuf {
    root().join("target/report")
}
