//! Signed checkpoints: the operator's SSH key through `ssh-keygen -Y sign`
//! (agent and hardware keys work), else a lifeline ed25519 key kept 0600.
//! Never writes a private key anywhere but its own 0600 file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde_json::{Value, json};

/// The `ssh-keygen -Y` namespace of journal signatures.
pub const NAMESPACE: &str = "lifeline-journal";
/// A `checkpoint` record follows at most this many other records.
pub const CHECKPOINT_EVERY: u64 = 32;
/// Environment variable naming the operator's SSH signing key (a private
/// key file, or a `.pub` whose private half is in ssh-agent).
pub const KEY_ENV: &str = "LIFELINE_SIGNING_KEY";
/// The principal written to allowed signers for an SSH key (default: the operator).
pub const PRINCIPAL_ENV: &str = "LIFELINE_SIGNING_PRINCIPAL";

const LOCAL_KEY: &str = "journal_ed25519";
pub const ALLOWED_SIGNERS: &str = "allowed_signers";

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("signing key '{path}': {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("signing key '{path}': {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("ssh-keygen -Y sign with '{path}' failed: {reason}")]
    SshKeygen { path: PathBuf, reason: String },
}

/// Who signs checkpoints.
pub enum Signer {
    Local {
        key: SigningKey,
        public: String,
        principal: String,
    },
    Ssh {
        key: PathBuf,
        public: String,
        principal: String,
    },
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.principal())
    }
}

/// The key directory of a journal: `<state>/keys` when the journal lives
/// in `<state>/incidents/<id>/`, else `keys/` beside the journal.
pub fn key_dir(journal: &Path) -> PathBuf {
    let dir = journal.parent().unwrap_or(Path::new("."));
    match dir.parent() {
        Some(inc) if inc.file_name().is_some_and(|n| n == "incidents") => {
            inc.parent().unwrap_or(Path::new(".")).join("keys")
        }
        _ => dir.join("keys"),
    }
}

/// The default allowed-signers file for a journal.
pub fn default_allowed_signers(journal: &Path) -> PathBuf {
    key_dir(journal).join(ALLOWED_SIGNERS)
}

/// What a checkpoint signs: the incident and the head it covers.
pub fn message(incident: &str, seq: u64, hash: &str) -> String {
    format!("lifeline-journal v1\nincident {incident}\nseq {seq}\nhash {hash}\n")
}

fn ssh_ed25519_public(vk: &VerifyingKey) -> String {
    let mut blob = Vec::with_capacity(51);
    for part in [b"ssh-ed25519".as_slice(), vk.as_bytes().as_slice()] {
        blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
        blob.extend_from_slice(part);
    }
    format!("ssh-ed25519 {}", B64.encode(blob))
}

fn parse_ssh_ed25519(public: &str) -> Option<VerifyingKey> {
    let mut it = public.split_whitespace();
    (it.next()? == "ssh-ed25519").then_some(())?;
    let blob = B64.decode(it.next()?).ok()?;
    let key = blob.get(4 + 11 + 4..)?;
    let arr: [u8; 32] = key.try_into().ok()?;
    VerifyingKey::from_bytes(&arr).ok()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Adds `principal namespaces="lifeline-journal" public` to the allowed
/// signers file unless that key is already there.
fn allow(dir: &Path, principal: &str, public: &str) -> Result<(), SignError> {
    let path = dir.join(ALLOWED_SIGNERS);
    let io = |source| SignError::Io {
        path: path.clone(),
        source,
    };
    let blob = public.split_whitespace().nth(1).unwrap_or_default();
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if have
        .lines()
        .any(|l| l.split_whitespace().any(|w| w == blob))
    {
        return Ok(());
    }
    let mut f = crate::state::open_private_append(&path).map_err(io)?;
    writeln!(f, "{principal} namespaces=\"{NAMESPACE}\" {public}").map_err(io)?;
    f.sync_all().map_err(io)
}

impl Signer {
    pub fn principal(&self) -> &str {
        match self {
            Signer::Local { principal, .. } | Signer::Ssh { principal, .. } => principal,
        }
    }

    /// `$LIFELINE_SIGNING_KEY` (an SSH key) when set, else the lifeline
    /// key in `key_dir`, generated on first use.
    pub fn resolve(key_dir: &Path, operator: &str) -> Result<Signer, SignError> {
        match std::env::var_os(KEY_ENV).filter(|v| !v.is_empty()) {
            Some(k) => Self::ssh(key_dir, Path::new(&k), operator),
            None => Self::local(key_dir),
        }
    }

    fn ssh(key_dir: &Path, key: &Path, operator: &str) -> Result<Signer, SignError> {
        let pub_path = if key.extension().is_some_and(|e| e == "pub") {
            key.to_path_buf()
        } else {
            PathBuf::from(format!("{}.pub", key.display()))
        };
        let text = std::fs::read_to_string(&pub_path).map_err(|source| SignError::Io {
            path: pub_path.clone(),
            source,
        })?;
        let public: String = text
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        if public.split_whitespace().count() != 2 {
            return Err(SignError::Key {
                path: pub_path,
                reason: "not an OpenSSH public key".into(),
            });
        }
        let principal = std::env::var(PRINCIPAL_ENV)
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| operator.to_string());
        crate::state::private_dir(key_dir).map_err(|source| SignError::Io {
            path: key_dir.to_path_buf(),
            source,
        })?;
        allow(key_dir, &principal, &public)?;
        Ok(Signer::Ssh {
            key: key.to_path_buf(),
            public,
            principal,
        })
    }

    fn local(key_dir: &Path) -> Result<Signer, SignError> {
        let path = key_dir.join(LOCAL_KEY);
        let io = |source| SignError::Io {
            path: path.clone(),
            source,
        };
        crate::state::private_dir(key_dir).map_err(io)?;
        let seed: [u8; 32] = match std::fs::read_to_string(&path) {
            Ok(text) => hex::decode(text.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| SignError::Key {
                    path: path.clone(),
                    reason: "not a lifeline key (64 hex digits); move it aside to get a new one"
                        .into(),
                })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = [0u8; 32];
                let mut r = std::fs::File::open("/dev/urandom").map_err(io)?;
                std::io::Read::read_exact(&mut r, &mut seed).map_err(io)?;
                crate::state::write_private_new(
                    &path,
                    format!("{}\n", hex::encode(seed)).as_bytes(),
                )
                .map_err(io)?;
                seed
            }
            Err(e) => return Err(io(e)),
        };
        let key = SigningKey::from_bytes(&seed);
        let public = ssh_ed25519_public(&key.verifying_key());
        let principal = format!("lifeline@{}", hostname());
        allow(key_dir, &principal, &public)?;
        Ok(Signer::Local {
            key,
            public,
            principal,
        })
    }

    /// The `data` of a checkpoint covering (seq, hash).
    pub fn sign(&self, incident: &str, seq: u64, hash: &str) -> Result<Value, SignError> {
        let msg = message(incident, seq, hash);
        let (scheme, public, signature) = match self {
            Signer::Local { key, public, .. } => (
                "ed25519",
                public,
                B64.encode(key.sign(msg.as_bytes()).to_bytes()),
            ),
            Signer::Ssh { key, public, .. } => ("sshsig", public, ssh_sign(key, &msg)?),
        };
        Ok(json!({
            "covers_seq": seq,
            "covers_hash": hash,
            "signer": { "scheme": scheme, "principal": self.principal(), "key": public },
            "signature": signature,
        }))
    }
}

fn ssh_sign(key: &Path, msg: &str) -> Result<String, SignError> {
    let err = |reason: String| SignError::SshKeygen {
        path: key.to_path_buf(),
        reason,
    };
    let mut child = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", NAMESPACE, "-f"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(e.to_string()))?;
    if let Some(mut si) = child.stdin.take() {
        si.write_all(msg.as_bytes())
            .map_err(|e| err(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        return Err(err(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One line of an allowed-signers file (OpenSSH format).
#[derive(Debug, Clone)]
struct Allowed {
    principals: Vec<String>,
    key: String,
}

/// An OpenSSH allowed-signers file.
#[derive(Debug, Clone)]
pub struct AllowedSigners {
    path: PathBuf,
    entries: Vec<Allowed>,
}

impl AllowedSigners {
    pub fn load(path: &Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        let mut entries = Vec::new();
        for l in text.lines().map(str::trim) {
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = l.split_whitespace().collect();
            let Some(kt) = words.iter().position(|w| {
                w.starts_with("ssh-") || w.starts_with("ecdsa-") || w.starts_with("sk-")
            }) else {
                continue;
            };
            let (Some(p), Some(k)) = (words.first(), words.get(kt + 1)) else {
                continue;
            };
            entries.push(Allowed {
                principals: p.split(',').map(str::to_string).collect(),
                key: format!("{} {k}", words[kt]),
            });
        }
        Ok(AllowedSigners {
            path: path.to_path_buf(),
            entries,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks a checkpoint's `data`: returns the signer's principal, or why not.
    pub fn check(&self, incident: &str, data: &Value) -> Result<String, String> {
        let seq = data["covers_seq"]
            .as_u64()
            .ok_or("checkpoint without covers_seq")?;
        let hash = data["covers_hash"]
            .as_str()
            .ok_or("checkpoint without covers_hash")?;
        let principal = data["signer"]["principal"].as_str().unwrap_or_default();
        let key = data["signer"]["key"].as_str().unwrap_or_default();
        let sig = data["signature"]
            .as_str()
            .ok_or("checkpoint without signature")?;
        let allowed = self
            .entries
            .iter()
            .any(|a| a.key == key && a.principals.iter().any(|p| p == principal || p == "*"));
        if !allowed {
            return Err(format!(
                "signer '{principal}' ({}) is not in the allowed signers '{}'",
                key.chars().take(40).collect::<String>(),
                self.path.display()
            ));
        }
        let msg = message(incident, seq, hash);
        match data["signer"]["scheme"].as_str() {
            Some("ed25519") => {
                let vk = parse_ssh_ed25519(key).ok_or("signer key is not an ed25519 key")?;
                let bytes: [u8; 64] = B64
                    .decode(sig)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or("signature is not 64 bytes of base64")?;
                vk.verify_strict(msg.as_bytes(), &Signature::from_bytes(&bytes))
                    .map_err(|_| {
                        "signature does not verify (the records it covers were changed)".to_string()
                    })?;
            }
            Some("sshsig") => ssh_verify(&self.path, principal, sig, &msg)?,
            other => return Err(format!("unknown signature scheme {other:?}")),
        }
        Ok(principal.to_string())
    }
}

fn ssh_verify(allowed: &Path, principal: &str, sig: &str, msg: &str) -> Result<(), String> {
    let mut f = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    f.write_all(sig.as_bytes()).map_err(|e| e.to_string())?;
    let mut child = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-n", NAMESPACE, "-f"])
        .arg(allowed)
        .arg("-I")
        .arg(principal)
        .arg("-s")
        .arg(f.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ssh-keygen: {e}"))?;
    if let Some(mut si) = child.stdin.take() {
        si.write_all(msg.as_bytes()).map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "SSH signature does not verify (the records it covers were changed): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_key_signs_and_verifies_and_detects_a_changed_head() {
        let d = tempfile::tempdir().unwrap();
        let s = Signer::local(d.path()).unwrap();
        let data = s.sign("inc", 7, "abc").unwrap();
        let allowed = AllowedSigners::load(&d.path().join(ALLOWED_SIGNERS)).unwrap();
        assert!(
            allowed
                .check("inc", &data)
                .unwrap()
                .starts_with("lifeline@")
        );
        let mut forged = data.clone();
        forged["covers_hash"] = json!("abd");
        assert!(
            allowed
                .check("inc", &forged)
                .unwrap_err()
                .contains("does not verify")
        );
        // The same key again: the file is reused, not regenerated.
        let s2 = Signer::local(d.path()).unwrap();
        assert_eq!(s2.sign("inc", 7, "abc").unwrap(), data);
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(d.path().join(LOCAL_KEY)).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
        // Another key, not allowed.
        let other = tempfile::tempdir().unwrap();
        let o = Signer::local(other.path()).unwrap();
        let e = allowed
            .check("inc", &o.sign("inc", 7, "abc").unwrap())
            .unwrap_err();
        assert!(e.contains("not in the allowed signers"), "{e}");
    }
}
