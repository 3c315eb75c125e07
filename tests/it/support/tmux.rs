//! A private tmux server for end-to-end tests of the real binaries: start a
//! shell line in a fixed-size window, send keys, poll the screen (bounded),
//! check the terminal was restored. The server is killed on drop.

#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    server: String,
    deadline: Duration,
}

impl Tmux {
    /// Starts `cmd` (a shell line) in a fresh tmux server `server` of `w` x
    /// `h`; after it exits the window shows `EXITED <status>` and the
    /// terminal's icanon/echo settings. Waits give up after `deadline`.
    pub fn start(server: &str, cmd: &str, w: u16, h: u16, deadline: Duration) -> Tmux {
        let t = Tmux {
            server: format!("{server}-{}", std::process::id()),
            deadline,
        };
        let line = format!(
            "{cmd}; echo EXITED $?; stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo; sleep 120"
        );
        let st = t
            .tmux()
            .args([
                "new-session",
                "-d",
                "-x",
                &w.to_string(),
                "-y",
                &h.to_string(),
                &line,
            ])
            .status()
            .expect("tmux: install it (scripts/test does)");
        assert!(st.success(), "tmux new-session failed");
        t
    }

    pub fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.server, "-f", "/dev/null"]);
        c
    }

    pub fn capture(&self) -> String {
        let o = self.tmux().args(["capture-pane", "-p"]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// With escape sequences (colours).
    pub fn capture_escaped(&self) -> String {
        let o = self
            .tmux()
            .args(["capture-pane", "-p", "-e"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn keys(&self, keys: &[&str]) {
        let st = self.tmux().arg("send-keys").args(keys).status().unwrap();
        assert!(st.success());
    }

    pub fn text(&self, s: &str) {
        let st = self.tmux().args(["send-keys", "-l", s]).status().unwrap();
        assert!(st.success());
    }

    /// Types a `:` command line and runs it.
    pub fn command(&self, line: &str) {
        self.text(":");
        self.text(line);
        self.keys(&["Enter"]);
    }

    /// Polls the screen until `pred` holds; fails with the last screen.
    pub fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.capture();
            if pred(&s) {
                return s;
            }
            if start.elapsed() > self.deadline {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn wait_for(&self, needle: &str) -> String {
        self.wait(&format!("'{needle}'"), |s| s.contains(needle))
    }

    /// The program exited and the terminal is cooked again (icanon, echo).
    pub fn assert_restored(&self) -> String {
        // Both stty lines (icanon, then echo): waiting for the first alone
        // raced the second.
        let s = self.wait("exit and stty", |s| {
            s.contains("EXITED")
                && (s.contains("\nicanon") || s.contains("\n-icanon"))
                && (s.contains("\necho") || s.contains("\n-echo"))
        });
        assert!(
            s.contains("\nicanon\n") && s.contains("\necho"),
            "terminal left raw:\n{s}"
        );
        assert!(
            !s.contains("-icanon") && !s.contains("-echo\n"),
            "terminal left raw:\n{s}"
        );
        s
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").status();
    }
}
