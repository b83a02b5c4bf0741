//! `pier rm`.

use crate::client::Client;
use crate::error::CliError;
use hyper::Method;

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    volumes: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

pub async fn rm(client: &Client, args: RmArgs) -> Result<i32, CliError> {
    let mut code = 0;
    for name in &args.containers {
        let path = format!(
            "/containers/{}?force={}&v={}",
            crate::client::encode(name),
            u8::from(args.force),
            u8::from(args.volumes)
        );
        match client.call(Method::DELETE, &path).await {
            Ok(_) => println!("{name}"),
            Err(e) => {
                eprintln!("pier: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}
