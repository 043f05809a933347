//! `chat-supervisor`: parse the command line, run it, print any error with its causes.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = chat_supervisor::cli::Cli::parse();
    match cli.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<chat_supervisor::cli::ExitWith>() {
            Some(exit) => {
                if !exit.message.is_empty() {
                    eprintln!("chat-supervisor: {}", exit.message);
                }
                ExitCode::from(exit.code)
            }
            None => {
                eprintln!("chat-supervisor: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
