//! The kernel's floor under one server frame: what a `send()` of a frame and a `recv()` of an
//! input cost on this machine, per connection per tick, with no game, no protocol, no runtime
//! and no readiness polling around them. `scripts/bench floor` runs it with the server side
//! and the client side pinned to different cores, as the other scenarios are, and the server
//! side's CPU per frame is the least any server that writes one TCP segment per client per
//! frame can spend here.
//!
//! ```text
//! taskset -c 0 kernel_floor serve --listen 127.0.0.1:18182 --connections 1000 &
//! taskset -c 1 kernel_floor drive --connect 127.0.0.1:18182 --connections 1000
//! ```
//!
//! Each tick the server side sends every connection one `--frame`-byte frame, then reads every
//! connection once (non-blocking) for its input; the driving side sends every connection one
//! `--input`-byte input and drains what arrived. The server side prints its CPU time (user and
//! system, from `/proc/self/stat`) per frame sent and per input read, and, for scale, what an
//! empty system call (`getppid`) costs: the most that batching system calls (`io_uring`) could
//! save per call.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "What one frame's send() and one input's recv() cost the kernel here")]
struct Cli {
    #[command(subcommand)]
    side: Side,
    /// Connections (one per simulated client).
    #[arg(long, global = true, default_value_t = 1000)]
    connections: usize,
    /// Ticks per second: one frame out and one input in per connection per tick.
    #[arg(long, global = true, default_value_t = 30)]
    rate: u32,
    /// Bytes per frame (S1's WebSocket frames average about 260).
    #[arg(long, global = true, default_value_t = 260)]
    frame: usize,
    /// Bytes per input (a WebSocket input message is 12); 0: no inputs, as for spectators,
    /// and the server side does not read.
    #[arg(long, global = true, default_value_t = 12)]
    input: usize,
}

#[derive(Subcommand)]
enum Side {
    /// The server side: accept, then send and read for `--seconds`, and print the figures.
    Serve {
        #[arg(long, default_value = "127.0.0.1:18182")]
        listen: String,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Also write the figures to this file as JSON (`scripts/bench floor` tabulates it).
        #[arg(long)]
        json: Option<std::path::PathBuf>,
    },
    /// The client side: connect, then send inputs and drain frames until the server closes.
    Drive {
        #[arg(long, default_value = "127.0.0.1:18182")]
        connect: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let period = Duration::from_secs_f64(1.0 / f64::from(cli.rate.max(1)));
    match &cli.side {
        Side::Serve {
            listen,
            seconds,
            json,
        } => {
            let figures = serve(&cli, listen, Duration::from_secs(*seconds), period)?;
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&figures)?;
                std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
            }
            Ok(())
        }
        Side::Drive { connect } => drive(&cli, connect, period),
    }
}

/// What the server side measured.
#[derive(serde::Serialize)]
struct Figures {
    connections: usize,
    rate_hz: u32,
    frame_bytes: usize,
    input_bytes: usize,
    seconds: f64,
    frames: u64,
    short_writes: u64,
    inputs_read: u64,
    cpu_user_seconds: f64,
    cpu_system_seconds: f64,
    null_syscall_us: f64,
}

/// What one empty system call (`getppid`) costs here, in µs: entering and leaving the kernel.
fn null_syscall_us() -> f64 {
    const CALLS: u32 = 1_000_000;
    let started = Instant::now();
    let mut sum = 0_u32;
    for _ in 0..CALLS {
        sum = sum.wrapping_add(std::hint::black_box(std::os::unix::process::parent_id()));
    }
    std::hint::black_box(sum);
    started.elapsed().as_secs_f64() * 1e6 / f64::from(CALLS)
}

fn serve(cli: &Cli, listen: &str, run: Duration, period: Duration) -> anyhow::Result<Figures> {
    let listener = TcpListener::bind(listen).with_context(|| format!("bind {listen}"))?;
    let mut conns = Vec::with_capacity(cli.connections);
    while conns.len() < cli.connections {
        let (stream, _) = listener.accept().context("accept")?;
        conns.push(prepare(stream)?);
    }
    let null_syscall = null_syscall_us();
    let frame = vec![0x5a_u8; cli.frame];
    let mut buf = vec![0_u8; 4096];
    let (mut frames, mut inputs, mut bytes_in, mut short_writes) = (0_u64, 0_u64, 0_u64, 0_u64);
    let cpu_before = cpu_times()?;
    let started = Instant::now();
    let mut next = started;
    while started.elapsed() < run {
        for conn in &mut conns {
            match conn.write(&frame) {
                Ok(n) if n == frame.len() => frames += 1,
                Ok(_) => short_writes += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => short_writes += 1,
                Err(e) => return Err(e).context("send"),
            }
        }
        for conn in conns.iter_mut().filter(|_| cli.input > 0) {
            match conn.read(&mut buf) {
                Ok(0) => bail!("a driving connection closed early"),
                Ok(n) => {
                    inputs += 1;
                    bytes_in += n as u64;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e).context("recv"),
            }
        }
        next += period;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = cpu_times()?;
    let (user, system) = (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1);
    let per_frame = |s: f64| s * 1e6 / frames.max(1) as f64;
    println!(
        "kernel_floor: {} connections, {} Hz, {} B frames, {} B inputs, {elapsed:.1} s",
        cli.connections, cli.rate, cli.frame, cli.input
    );
    println!(
        "  frames sent {frames} ({:.0}/s), short or refused writes {short_writes}, recv() calls that read {inputs} ({bytes_in} B)",
        frames as f64 / elapsed
    );
    println!(
        "  server CPU {:.2} cores: per frame {:.2} µs = user {:.2} + system {:.2}",
        (user + system) / elapsed,
        per_frame(user + system),
        per_frame(user),
        per_frame(system)
    );
    println!("  an empty system call (getppid): {null_syscall:.2} µs");
    println!(
        "  one core at this cost: {:.0} frames/s, {:.0} clients at {} Hz",
        1e6 / per_frame(user + system),
        1e6 / per_frame(user + system) / f64::from(cli.rate),
        cli.rate
    );
    Ok(Figures {
        connections: cli.connections,
        rate_hz: cli.rate,
        frame_bytes: cli.frame,
        input_bytes: cli.input,
        seconds: elapsed,
        frames,
        short_writes,
        inputs_read: inputs,
        cpu_user_seconds: user,
        cpu_system_seconds: system,
        null_syscall_us: null_syscall,
    })
}

fn drive(cli: &Cli, connect: &str, period: Duration) -> anyhow::Result<()> {
    let mut conns = Vec::with_capacity(cli.connections);
    for _ in 0..cli.connections {
        let stream = TcpStream::connect(connect).with_context(|| format!("connect {connect}"))?;
        conns.push(prepare(stream)?);
    }
    let input = vec![0xa5_u8; cli.input];
    let mut buf = vec![0_u8; 64 * 1024];
    let mut next = Instant::now();
    loop {
        for conn in conns.iter_mut().filter(|_| cli.input > 0) {
            match conn.write(&input) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                // The server side has finished and closed.
                Err(_) => return Ok(()),
            }
        }
        for conn in &mut conns {
            loop {
                match conn.read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => return Ok(()),
                }
            }
        }
        next += period;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

fn prepare(stream: TcpStream) -> anyhow::Result<TcpStream> {
    stream.set_nodelay(true).context("TCP_NODELAY")?;
    stream.set_nonblocking(true).context("O_NONBLOCK")?;
    Ok(stream)
}

/// This process's user and system CPU seconds, from `/proc/self/stat`.
fn cpu_times() -> anyhow::Result<(f64, f64)> {
    // Clock ticks per second: 100 on every Linux platform Rust targets (USER_HZ).
    const CLK_TCK: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").context("/proc/self/stat")?;
    // The fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |i: usize| -> anyhow::Result<f64> {
        let ticks: u64 = fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .context("/proc/self/stat has no utime/stime")?;
        Ok(ticks as f64 / CLK_TCK)
    };
    // utime and stime are fields 14 and 15 of the line: indexes 11 and 12 after the name.
    Ok((field(11)?, field(12)?))
}
