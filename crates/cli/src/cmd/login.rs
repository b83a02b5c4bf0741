//! `pier login` and `pier logout`, as docker's: the daemon checks the
//! credentials (`POST /auth`), then they are kept in config.json or the
//! configured credential helper (see [`crate::credentials`]).

use super::image_ops::exit1;
use crate::client::{full, read_json, Client};
use crate::credentials::{convert_to_hostname, AuthConfig, ConfigFile, StoredIn, INDEX_SERVER};
use crate::error::CliError;
use hyper::Method;
use std::io::{BufRead, IsTerminal, Read, Write};

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// Username
    #[arg(short, long)]
    username: Option<String>,
    /// Password or Personal Access Token (PAT), or "-" to read from stdin
    #[arg(short, long)]
    password: Option<String>,
    /// Take the Password or Personal Access Token (PAT) from stdin
    #[arg(long)]
    password_stdin: bool,
    /// Registry (default: Docker Hub)
    server: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// Registry (default: Docker Hub)
    server: Option<String>,
}

fn fail(message: impl Into<String>) -> CliError {
    exit1(CliError::engine(message))
}

/// Strips one terminal line ending, as docker does with a piped secret.
fn trim_line_end(s: &str) -> &str {
    s.strip_suffix("\r\n")
        .or_else(|| s.strip_suffix('\n'))
        .or_else(|| s.strip_suffix('\r'))
        .unwrap_or(s)
}

/// Checks the flags as docker does; returns (user, password) with the
/// password read from stdin when asked.
fn credentials_from_flags(args: &LoginArgs) -> Result<(String, String), CliError> {
    let from_stdin = args.password_stdin || args.password.as_deref() == Some("-");
    if from_stdin {
        if args.password.as_deref().is_some_and(|p| p != "-") {
            return Err(fail(
                "conflicting options: cannot specify both --password and --password-stdin",
            ));
        }
        if args.username.is_none() {
            return Err(fail(
                "the --password-stdin option requires --username to be set",
            ));
        }
    }
    if args.username.as_deref() == Some("") {
        return Err(fail("username is empty"));
    }
    if args.password.as_deref() == Some("") {
        return Err(fail("password is empty"));
    }
    let user = args.username.clone().unwrap_or_default();
    if from_stdin {
        let mut secret = String::new();
        std::io::stdin()
            .read_to_string(&mut secret)
            .map_err(|e| fail(format!("reading the password from stdin: {e}")))?;
        let secret = trim_line_end(&secret).to_string();
        if secret.trim().is_empty() {
            return Err(fail("password is empty"));
        }
        return Ok((user, secret));
    }
    let password = args.password.clone().unwrap_or_default();
    if !password.is_empty() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    Ok((user, password))
}

/// Asks for what the flags did not give, on the terminal.
fn prompt(
    user: String,
    password: String,
    default_user: &str,
) -> Result<(String, String), CliError> {
    if (user.is_empty() || password.is_empty()) && !std::io::stdin().is_terminal() {
        return Err(fail(
            "error: cannot perform an interactive login from a non-TTY device",
        ));
    }
    let read_line = |question: &str| -> Result<String, CliError> {
        print!("{question}");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| fail(format!("reading from the terminal: {e}")))?;
        Ok(trim_line_end(&line).to_string())
    };
    let mut user = user.trim().to_string();
    if user.is_empty() {
        let question = if default_user.is_empty() {
            "Username: ".to_string()
        } else {
            format!("Username ({default_user}): ")
        };
        user = read_line(&question)?.trim().to_string();
        if user.is_empty() {
            user = default_user.to_string();
        }
        if user.is_empty() {
            return Err(fail("error: username is required"));
        }
    }
    let mut password = password;
    if password.trim().is_empty() {
        let stdin = std::io::stdin();
        let saved = rustix::termios::tcgetattr(&stdin).ok();
        if let Some(t) = &saved {
            let mut quiet = t.clone();
            quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
            let _ =
                rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet);
        }
        let answer = read_line("Password: ");
        if let Some(t) = &saved {
            let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, t);
        }
        println!();
        password = answer?;
        if password.is_empty() {
            return Err(fail("error: password is required"));
        }
    }
    Ok((user, password))
}

#[derive(serde::Deserialize)]
struct AuthResponse {
    #[serde(rename = "Status", default)]
    status: String,
    #[serde(rename = "IdentityToken", default)]
    identity_token: String,
}

/// `POST /auth`: the daemon logs in to the registry.
async fn check_with_daemon(client: &Client, auth: &AuthConfig) -> Result<AuthResponse, CliError> {
    let body = serde_json::to_vec(auth).map_err(|e| CliError::engine(e.to_string()))?;
    let resp = client.send(Method::POST, "/auth", full(body)).await?;
    read_json(resp).await
}

pub async fn login(client: &Client, args: LoginArgs) -> Result<i32, CliError> {
    let (user, password) = credentials_from_flags(&args)?;
    let server = match args.server.as_deref() {
        None | Some("") | Some("docker.io") => INDEX_SERVER.to_string(),
        Some(s) => s.to_string(),
    };
    let key = if server == INDEX_SERVER {
        server
    } else {
        convert_to_hostname(&server)
    };
    let mut config = ConfigFile::load_default().map_err(fail)?;
    let stored = if user.is_empty() && password.is_empty() {
        config.get(&key).unwrap_or_default()
    } else {
        AuthConfig::default()
    };
    let mut result = None;
    if !stored.username.is_empty() && !stored.password.is_empty() {
        eprintln!(
            "Authenticating with existing credentials... [Username: {}]\n",
            stored.username
        );
        eprintln!(" Info -> To login with a different account, run 'pier logout' followed by 'pier login'\n");
        let auth = AuthConfig {
            serveraddress: key.clone(),
            ..stored.clone()
        };
        match check_with_daemon(client, &auth).await {
            Ok(r) => result = Some((auth, r)),
            Err(e) if e.status == Some(401) => eprintln!("Stored credentials invalid or expired"),
            Err(e) => eprintln!("Login did not succeed, error: {}", e.message),
        }
    }
    let (mut auth, response) = match result {
        Some(done) => done,
        None => {
            let (user, password) = prompt(user, password, &stored.username)?;
            let auth = AuthConfig {
                username: user,
                password,
                serveraddress: key.clone(),
                ..Default::default()
            };
            let response = check_with_daemon(client, &auth).await.map_err(exit1)?;
            (auth, response)
        }
    };
    if !response.identity_token.is_empty() {
        auth.password.clear();
        auth.identitytoken = response.identity_token;
    }
    let unchanged =
        config.helper_for(&key).is_none() && config.get(&key).ok() == Some(auth.clone());
    if !unchanged {
        let place = config
            .store(&auth)
            .map_err(|e| fail(format!("error saving credentials: {e}")))?;
        if place == StoredIn::File && !auth.password.is_empty() {
            eprintln!(
                "\nWARNING! Your credentials are stored unencrypted in '{}'.\n\
                 Configure a credential helper to remove this warning. See\n\
                 https://docs.docker.com/go/credential-store/\n",
                config.path.display()
            );
        }
    }
    if !response.status.is_empty() {
        println!("{}", response.status);
    }
    Ok(0)
}

pub async fn logout(args: LogoutArgs) -> Result<i32, CliError> {
    let (server, default) = match args.server.as_deref() {
        None | Some("") => (INDEX_SERVER.to_string(), true),
        Some(s) => (s.to_string(), false),
    };
    let hostname = if default {
        server.clone()
    } else {
        convert_to_hostname(&server)
    };
    let mut keys = vec![server.clone()];
    if !default {
        for k in [
            hostname.clone(),
            format!("http://{hostname}"),
            format!("https://{hostname}"),
        ] {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    let mut config = ConfigFile::load_default().map_err(fail)?;
    println!("Removing login credentials for {hostname}");
    let mut errors = Vec::new();
    for k in &keys {
        if let Err(e) = config.erase(k) {
            errors.push(format!("{k}: {e}"));
        }
    }
    if errors.len() == keys.len() {
        eprintln!("WARNING: could not erase credentials:");
        for e in errors {
            eprintln!("{e}");
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piped_secrets_lose_one_line_ending_only() {
        assert_eq!(trim_line_end("pw\n"), "pw");
        assert_eq!(trim_line_end("pw\r\n"), "pw");
        assert_eq!(trim_line_end("pw\n\n"), "pw\n");
        assert_eq!(trim_line_end(" pw "), " pw ");
    }

    fn args(user: Option<&str>, password: Option<&str>, stdin: bool) -> LoginArgs {
        LoginArgs {
            username: user.map(str::to_owned),
            password: password.map(str::to_owned),
            password_stdin: stdin,
            server: None,
        }
    }

    #[test]
    fn flag_combinations_are_checked_as_docker_does() {
        let msg = |a: LoginArgs| credentials_from_flags(&a).unwrap_err().message;
        assert!(msg(args(Some("u"), Some("p"), true)).contains("conflicting options"));
        assert!(msg(args(None, None, true)).contains("requires --username"));
        assert!(msg(args(None, Some("-"), false)).contains("requires --username"));
        assert_eq!(msg(args(Some(""), Some("p"), false)), "username is empty");
        assert_eq!(msg(args(Some("u"), Some(""), false)), "password is empty");
        assert_eq!(
            credentials_from_flags(&args(Some("u"), Some("p"), false)).unwrap(),
            ("u".to_string(), "p".to_string())
        );
    }
}
