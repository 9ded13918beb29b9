//! The `runnel` command line. Parsing only; the commands live in `runnel::cmd`.

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use runnel::cmd;

// mimalloc rather than the system allocator: an event's output (2.6 KB)
// is bigger than glibc's per-thread cache serves, and glibc's bins made
// malloc/free about a tenth of a pipeline's time (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// runnel — a streaming pipeline host.
///
/// Click events in, a per-event transform and a per-key aggregation as
/// WebAssembly plugins, event-time windows and triggers with Apache Beam's
/// semantics, results out. Start with `runnel demo`.
#[derive(Parser)]
#[command(name = "runnel", version, about, long_about, max_term_width = 100)]
struct Cli {
    /// Log level (error, warn, info, debug, trace); RUST_LOG overrides it.
    #[arg(long, global = true, default_value = "warn")]
    log: String,
    /// Write logs as JSON lines.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the workshop pipeline on the bundled Flood It events, no cloud needed.
    ///
    /// Flood It click events → add-weekday (WASM) → key by user_pseudo_id,
    /// 1-minute fixed windows → count-events (WASM) → the most active users
    /// of every minute, then a summary. The pipeline is examples/demo.toml.
    Demo {
        /// Users shown per minute.
        #[arg(long, default_value_t = 3)]
        top: usize,
        /// Minutes printed (all 1,441 are computed).
        #[arg(long, default_value_t = 15)]
        windows: usize,
        /// Also write every pane as NDJSON to this file.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Where refused events go.
        #[arg(long, default_value = "runnel-demo-dead-letters.ndjson")]
        dead_letters: PathBuf,
        /// Serve the live dashboard (and /metrics, the admin API) on this address, e.g. 127.0.0.1:9464.
        #[arg(long)]
        admin: Option<String>,
        /// Stream the events at this many per second, to watch the dashboard live.
        #[arg(long)]
        rate: Option<f64>,
        /// With --admin: keep serving the dashboard after the run, until Ctrl-C.
        #[arg(long)]
        linger: bool,
    },
    /// Run a pipeline file (TOML; see docs/config.md and examples/).
    ///
    /// Plugin files named in it are watched: a changed .wasm is checked and
    /// swapped in between batches, without a restart and without losing or
    /// repeating an event; a broken one is refused and the old one keeps
    /// running. With an [admin] table (or --admin), an HTTP server beside it
    /// serves /healthz and /api/status and takes `runnel reload`.
    Run {
        /// The pipeline file.
        #[arg(long, short)]
        config: PathBuf,
        /// Start the admin server on this address (HOST:PORT), overriding [admin] listen.
        #[arg(long)]
        admin: Option<String>,
    },
    /// Hot-reload plugins of a running pipeline (through its admin server).
    ///
    /// Without --transform/--aggregate, the pipeline re-reads its plugin
    /// files; with them, the given .wasm files are uploaded. Each is checked
    /// against the contract and smoke-called before it is swapped in; the
    /// answer says whether it was swapped, unchanged or refused (and why).
    /// Needs the pipeline's admin token in RUNNEL_ADMIN_TOKEN (or [admin] token).
    Reload {
        /// The running pipeline's file (for the admin address and token).
        #[arg(long, short)]
        config: PathBuf,
        /// The admin server's address, if not the file's [admin] listen.
        #[arg(long)]
        admin: Option<String>,
        /// A new transform to swap in.
        #[arg(long)]
        transform: Option<PathBuf>,
        /// A new aggregate to swap in.
        #[arg(long)]
        aggregate: Option<PathBuf>,
    },
    /// Drain a running pipeline (through its admin server), as Dataflow's Drain does.
    ///
    /// The pipeline stops pulling, fires and writes every open window
    /// (incomplete ones too: nothing more will come for them in this run),
    /// acknowledges every message it counted, hands back what it pulled but
    /// had not counted yet, and exits 0. A stop (SIGTERM or Ctrl-C) instead
    /// leaves open windows to the next run. Needs the pipeline's admin token
    /// in RUNNEL_ADMIN_TOKEN (or [admin] token).
    Drain {
        /// The running pipeline's file (for the admin address and token).
        #[arg(long, short)]
        config: PathBuf,
        /// The admin server's address, if not the file's [admin] listen.
        #[arg(long)]
        admin: Option<String>,
    },
    /// Create the pipeline's Pub/Sub topic and subscription and BigQuery dataset and table (idempotent).
    Setup {
        /// The pipeline file ([source] type = "pubsub", [sink] type = "bigquery", [cloud]).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Publish NDJSON events to the pipeline's Pub/Sub topic (the click-stream generator).
    Publish {
        /// The pipeline file naming the topic.
        #[arg(long, short)]
        config: PathBuf,
        /// Events, one JSON object per line (.gz is read too).
        #[arg(long)]
        file: PathBuf,
        /// Messages per second (default: as fast as possible).
        #[arg(long)]
        rate: Option<f64>,
        /// Start over at the end of the file (until --limit).
        #[arg(long = "loop")]
        repeat: bool,
        /// Publish at most this many messages.
        #[arg(long)]
        limit: Option<u64>,
        /// Re-date each event's `event_timestamp` to the moment it is sent, so
        /// windows in the events' own time ([event] time = "/event_timestamp")
        /// see a live stream, also on a second pass of --loop. Not needed for
        /// windows in publish time (the workshop's default).
        #[arg(long)]
        retime: bool,
    },
    /// The workshop's validation: messages waiting and held, rows in the table, dead letters.
    ///
    /// Counts the subscription's waiting messages by peeking (they are handed
    /// back at once), asks a running pipeline's admin server how many it holds
    /// unacknowledged, counts the BigQuery table's rows and keys, and the dead
    /// letters by stage and reason. "every message is acknowledged" is the
    /// workshop's "unacked messages went to 0".
    Status {
        /// The pipeline file.
        #[arg(long, short)]
        config: PathBuf,
        /// The running pipeline's admin server, if not the file's [admin] listen.
        #[arg(long)]
        admin: Option<String>,
        /// Stop counting waiting messages at this many.
        #[arg(long, default_value_t = 10_000)]
        peek_limit: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Dead letters: re-drive them through the current plugins after a fix.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Grade a workshop exercise: one guest's scorecard, or a whole class's.
    ///
    /// Each test case's events go through the plugin and what comes out is
    /// compared with the expected output; the scorecard shows each case's
    /// verdict, the differences, and a hint. With a directory, every .wasm
    /// in it is graded in parallel, a summary table is printed and an HTML
    /// report written. A guest that traps, loops or breaks the contract
    /// scores 0 on the affected cases, with the reason. `runnel exercises`
    /// lists the exercises.
    Grade {
        /// The exercise: a bundled one (`02-add-weekday`, or `02`) or a
        /// directory with exercise.toml and cases.ndjson.
        exercise: String,
        /// A participant's .wasm, or a directory of them.
        target: PathBuf,
        /// Print JSON (for tools).
        #[arg(long)]
        json: bool,
        /// The instructor's folder of held-back cases (NAME/held-back.ndjson
        /// inside it, e.g. guest-transforms/solutions); without it, only the
        /// visible cases are graded: held-back cases are never built into runnel.
        #[arg(long, value_name = "DIR")]
        held_back: Option<PathBuf>,
        /// Only the cases participants see, even with --held-back.
        #[arg(long)]
        visible_only: bool,
        /// Where a class's HTML report goes [default: DIR/grade-report.html].
        #[arg(long)]
        html: Option<PathBuf>,
        /// Guests graded at once [default: the number of cores].
        #[arg(long)]
        jobs: Option<usize>,
    },
    /// List the workshop exercises.
    Exercises,
    /// A room: every participant's plugin in a slot of its own on one stream, with a live leaderboard.
    ///
    /// Each .wasm in DIR gets a slot with its own sandbox; every batch of the
    /// stream goes through the reference solution and every slot, and their
    /// outputs are compared event by event (panes, for aggregates). A slot
    /// that keeps failing is quarantined without touching the others. The
    /// leaderboard ranks correctness first, then time per event.
    Room {
        /// The exercise (as for `grade`).
        exercise: String,
        /// A directory of participants' .wasm files.
        guests: PathBuf,
        /// The reference solution [default: the built solution of the exercise].
        #[arg(long)]
        reference: Option<PathBuf>,
        /// Events to stream (NDJSON, .gz too) [default: the bundled Flood It events].
        #[arg(long)]
        input: Option<PathBuf>,
        /// Stop after this many events.
        #[arg(long)]
        events: Option<u64>,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// The participant's loop: build an exercise (Rust or Python), grade it, hot-swap it into a running pipeline.
    ///
    /// Builds the exercise (a Rust crate for wasm32-wasip2, or a Python
    /// folder with app.py: see `runnel build`), grades it on the visible cases,
    /// and with --config (a running pipeline's file with an [admin] table;
    /// RUNNEL_ADMIN_TOKEN set) swaps it in once every case passes.
    Try {
        /// The exercise's directory, e.g. guest-transforms/exercises/02-add-weekday
        /// (Rust) or guest-transforms/python/exercises/02-add-weekday (Python).
        crate_dir: PathBuf,
        /// The exercise, when the directory does not say (e.g. for a copy).
        #[arg(long)]
        exercise: Option<String>,
        /// The running pipeline's file, to hot-swap the plugin into.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The running pipeline's admin address, if not the file's.
        #[arg(long)]
        admin: Option<String>,
        /// Swap it in even if cases fail.
        #[arg(long)]
        force: bool,
    },
    /// Build a plugin: a Rust crate or a Python folder to a .wasm component.
    ///
    /// A folder with Cargo.toml is built by cargo for wasm32-wasip2 (add the
    /// target once: `rustup target add wasm32-wasip2`). A folder with app.py
    /// (ending with `Transformer = export(...)` or `Aggregator =
    /// export(...)`, see guest-transforms/python) is built by componentize-py
    /// against the contract and the Python SDK this binary carries; the
    /// first Python build creates a virtualenv for it (RUNNEL_PYTHON_VENV,
    /// else python-venv in the plugin cache folder), which needs python3 and
    /// PyPI.
    Build {
        /// The plugin's folder.
        dir: PathBuf,
        /// Where to write the .wasm [default: DIR/plugin.wasm for Python;
        /// cargo's target/ folder for Rust].
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Check a plugin against the contract: its world, exports, size, or why it is refused.
    Check {
        /// A .wasm component, or a bundled plugin's name.
        plugin: PathBuf,
    },
    /// Run the pipeline file on Apache Beam: the same plugins, on Beam's runners.
    ///
    /// Hands the file to the runnel_beam package (beam/README.md), which
    /// translates it into a Beam pipeline (windows and triggers one to one,
    /// the plugins through runnel's own runtime) or refuses what Beam cannot
    /// run the same way. Everything after the file is Beam's own options:
    ///
    ///   runnel beam --config examples/beam.toml
    ///   runnel beam --config F --direct_running_mode=multi_processing --direct_num_workers=2
    ///   runnel beam --config F --runner DataflowRunner --project P --region R
    ///
    /// The Python used: RUNNEL_BEAM_PYTHON, else the one installed beside
    /// this runnel by the wheel, else target/beam-venv (scripts/beam.sh setup).
    Beam {
        /// The pipeline file.
        #[arg(long, short)]
        config: PathBuf,
        /// Beam's pipeline options (`--check`: translate and load the
        /// plugins, do not run).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        beam_args: Vec<String>,
    },
    /// Measure runnel: end to end against native plugins, plugin call cost, peers.
    ///
    /// Runs the workshop pipeline (file → add-weekday → fixed 60 s windows
    /// per user → count-events → null sink) on the bundled events looped to
    /// 2,000,000, with the WASM plugins and with native twins of them, in
    /// interleaved rounds on this thread; then the plugin call cost by batch
    /// size; with --peers, Apache Beam (streaming, batch) and Flink SQL on
    /// the same file, checking they produce the same windows. Writes a
    /// markdown report and an SVG plot and prints one line per case.
    /// scripts/bench.sh installs the peers and runs the other benchmarks too.
    Bench {
        /// Small sizes, one round, targets not judged (what CI runs).
        #[arg(long)]
        smoke: bool,
        /// Events for the end-to-end runs [default: 2000000, smoke 20000].
        #[arg(long)]
        events: Option<usize>,
        /// Rounds of the WASM/native pair [default: 3, smoke 1].
        #[arg(long)]
        rounds: Option<usize>,
        /// Also run the peers (virtualenvs under target/, see scripts/bench.sh).
        #[arg(long)]
        peers: bool,
        /// The repository root (scripts/peers, target/).
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// The markdown report.
        #[arg(long, default_value = "target/bench/runnel-bench.md")]
        out: PathBuf,
        /// The SVG plot (linked from the report by file name).
        #[arg(long, default_value = "target/bench/throughput.svg")]
        plot: PathBuf,
    },
    /// Replay a scripted stream (Beam TestStream-style) and print every pane as NDJSON.
    ///
    /// The scenario format is docs/replay-format.md. With --golden, the panes
    /// are compared with expected ones and a difference is an error.
    Replay {
        /// The scenario (NDJSON).
        scenario: PathBuf,
        /// The aggregate plugin that counts (a .wasm file or a bundled name).
        #[arg(long, default_value = "count-events")]
        aggregate: String,
        /// Expected panes (NDJSON) to compare with.
        #[arg(long)]
        golden: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum DlqCommand {
    /// Run the dead letters of a pipeline file through its current plugins.
    ///
    /// The dead-letter file is moved aside; events that still fail are
    /// written to a fresh one with their reasons.
    Replay {
        /// The pipeline file (its [dead_letters] path is replayed).
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn init_logging(level: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Demo { top, windows, output, dead_letters, admin, rate, linger } => {
            cmd::demo::run(&cmd::demo::DemoOptions { top, windows, output, dead_letters, admin, rate, linger })?;
        }
        Command::Run { config, admin } => {
            cmd::run::run(&config, admin.as_deref())?;
        }
        Command::Reload { config, admin, transform, aggregate } => {
            let outcomes = cmd::reload::run(&cmd::reload::ReloadOptions { config, admin, transform, aggregate })?;
            let mut refused = 0;
            for o in &outcomes {
                println!("{o}");
                refused += usize::from(o.outcome == runnel::plugin::reload::Outcome::Refused);
            }
            if refused > 0 {
                anyhow::bail!("{refused} plugin version(s) refused; the running versions stay");
            }
        }
        Command::Drain { config, admin } => println!("{}", cmd::drain::run(&config, admin.as_deref())?),
        Command::Setup { config } => cmd::setup::run(&config)?,
        Command::Publish { config, file, rate, repeat, limit, retime } => {
            let quiet = !std::io::IsTerminal::is_terminal(&std::io::stderr());
            let opts = cmd::publish::PublishOptions { file: &file, rate, repeat, limit, quiet, retime };
            let n = cmd::publish::run(&config, &opts)?;
            eprintln!("published {n} messages");
        }
        Command::Status { config, admin, peek_limit, json } => {
            let status = cmd::status::run(&cmd::status::StatusOptions { config: &config, admin: admin.as_deref(), peek_limit })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                println!("{status}");
            }
        }
        Command::Dlq { command: DlqCommand::Replay { config } } => {
            cmd::dlq::replay(&config)?;
        }
        Command::Grade { exercise, target, json, visible_only, held_back, html, jobs } => {
            let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
            cmd::grade::run(&cmd::grade::GradeOptions { exercise, target, json, visible_only, held_back, html, jobs })?;
        }
        Command::Exercises => println!("{}", cmd::grade::list()),
        Command::Room { exercise, guests, reference, input, events, json } => {
            cmd::grade::room(&cmd::grade::RoomOptions { exercise, guests, reference, input, limit: events, json })?;
        }
        Command::Try { crate_dir, exercise, config, admin, force } => {
            cmd::try_exercise::run(&cmd::try_exercise::TryOptions { crate_dir, exercise, config, admin, force })?;
        }
        Command::Build { dir, out } => {
            let wasm = cmd::build::plugin(&dir, out.as_deref())?;
            let report = cmd::check::run(&wasm)?;
            println!("{}: built, a runnel plugin\n{report}", wasm.display());
        }
        Command::Check { plugin } => {
            let report = cmd::check::run(&plugin)?;
            println!("{}: OK, a runnel plugin\n{report}", plugin.display());
        }
        Command::Beam { config, beam_args } => {
            let code = cmd::beam::run(&config, &beam_args)?;
            if code != 0 {
                std::process::exit(code);
            }
        }
        Command::Bench { smoke, events, rounds, peers, repo, out, plot } => {
            let work = repo.join("target/bench");
            // With the peers, runnel runs the Python twins of its plugins
            // on their input too.
            let python = peers.then(|| cmd::bench::build_python(&repo, &work));
            let opts = runnel::bench::BenchOptions { smoke, events, rounds, peers, python, repo, work };
            cmd::bench::run(&opts, &cmd::bench::Outputs { out, plot })?;
        }
        Command::Replay { scenario, aggregate, golden } => {
            cmd::replay::run(&scenario, &aggregate, golden.as_deref(), &mut std::io::stdout().lock())?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log, cli.log_json);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
