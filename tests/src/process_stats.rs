//! What a process has used, read from `/proc` from outside: CPU time at nanosecond resolution and peak RSS; the size of its Lambda zip; and the median the benchmarks report.

/// CPU time `pid` has used so far, in nanoseconds: the sum over its threads
/// of the first field of `/proc/<pid>/task/<tid>/schedstat`.
pub fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The peak resident set of `pid` (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The middle value (the upper one of an even count).
pub fn median<T: PartialOrd + Copy>(mut values: Vec<T>) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    values[values.len() / 2]
}

/// The size in bytes of the Lambda deployment zip of the binary at `path`
/// (`bootstrap`, deflate level 9, as `cargo lambda build --output-format
/// zip` makes it), computed by Python's zipfile.
pub fn zipped_size(path: &std::path::Path) -> u64 {
    std::process::Command::new("python3")
        .args(["-c", "import io,sys,zipfile; b=io.BytesIO(); z=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED,compresslevel=9); z.write(sys.argv[1],'bootstrap'); z.close(); print(len(b.getvalue()))"])
        .arg(path)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0)
}
