//! `pier info`, `pier version`.

use crate::client::Client;
use crate::error::CliError;

pub async fn info(client: &Client) -> Result<i32, CliError> {
    let v: serde_json::Value = client.get_json("/info").await?;
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let n = |k: &str| v[k].as_i64().unwrap_or(0);
    println!("Client:");
    println!(" Version:    {}", env!("CARGO_PKG_VERSION"));
    println!(" Context:    unix://{}", s("PierSocket"));
    println!();
    println!("Server:");
    println!(" Containers: {}", n("Containers"));
    println!("  Running: {}", n("ContainersRunning"));
    println!("  Paused: {}", n("ContainersPaused"));
    println!("  Stopped: {}", n("ContainersStopped"));
    println!(" Images: {}", n("Images"));
    println!(" Server Version: {}", s("ServerVersion"));
    println!(" Storage Driver: {}", s("Driver"));
    println!(" Logging Driver: {}", s("LoggingDriver"));
    println!(" Cgroup Driver: {}", s("CgroupDriver"));
    println!(
        " Cgroup Version: {} ({})",
        s("CgroupVersion"),
        s("PierCgroupMode")
    );
    println!(" Default Runtime: {}", s("DefaultRuntime"));
    println!(" Kernel Version: {}", s("KernelVersion"));
    println!(" Operating System: {}", s("OperatingSystem"));
    println!(" OSType: {}", s("OSType"));
    println!(" Architecture: {}", s("Architecture"));
    println!(" CPUs: {}", n("NCPU"));
    println!(
        " Total Memory: {:.2}GiB",
        n("MemTotal") as f64 / (1u64 << 30) as f64
    );
    println!(" Name: {}", s("Name"));
    println!(" Data Root: {}", s("DockerRootDir"));
    println!(" Exec Root: {}", s("PierExecRoot"));
    Ok(0)
}

pub async fn version(client: &Client) -> Result<i32, CliError> {
    println!("Client:");
    println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
    println!(" API version:       1.56");
    println!(" OS/Arch:           linux/{}", std::env::consts::ARCH);
    println!();
    let v: serde_json::Value = client.get_json("/version").await?;
    println!("Server: pier");
    println!(" Engine:");
    println!(
        "  Version:          {}",
        v["Version"].as_str().unwrap_or_default()
    );
    println!(
        "  API version:      {} (minimum version {})",
        v["ApiVersion"].as_str().unwrap_or_default(),
        v["MinAPIVersion"].as_str().unwrap_or_default()
    );
    println!(
        "  OS/Arch:          {}/{}",
        v["Os"].as_str().unwrap_or_default(),
        v["Arch"].as_str().unwrap_or_default()
    );
    println!(
        "  Kernel Version:   {}",
        v["KernelVersion"].as_str().unwrap_or_default()
    );
    Ok(0)
}
