//! Containers as docker and podman print them: `ps -a --format '{{json .}}'`
//! (one object per line) and `inspect` (an array). Pure parsing; values of
//! environment variables are never kept, only the databases they name.

use serde_json::Value;

use super::dbref::{DbRef, urls_in};

/// One container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub image: String,
    /// `running`, `exited`, ...
    pub state: String,
    /// `Up 2 hours`, `Exited (0) 3 hours ago`.
    pub status: String,
    pub restart_policy: Option<String>,
    /// Entrypoint + command.
    pub command: Vec<String>,
    /// `volume app_pgdata -> /var/lib/postgresql/data`, `bind /srv/x -> /x`.
    pub mounts: Vec<String>,
    /// Docker compose file and service, when compose made it.
    pub compose: Option<String>,
    /// Databases named in its environment (passwords dropped).
    pub db_refs: Vec<DbRef>,
    /// `POSTGRES_DB` when the container is a PostgreSQL server.
    pub serves_db: Option<String>,
}

fn s(v: &Value) -> String {
    match v {
        Value::String(x) => x.clone(),
        Value::Array(a) => a.iter().map(s).collect::<Vec<_>>().join(","),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().map(s).collect(),
        Value::String(x) if !x.is_empty() => vec![x.clone()],
        _ => Vec::new(),
    }
}

/// `ps -a --format '{{json .}}'`: docker prints strings (`Names` comma-joined),
/// podman arrays. Lines that are not JSON objects are skipped.
pub fn parse_ps(text: &str) -> Vec<Container> {
    let mut out = Vec::new();
    for l in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(l.trim()) else {
            continue;
        };
        // `podman ps --format json` prints one array instead.
        let items = match v {
            Value::Array(a) => a,
            o @ Value::Object(_) => vec![o],
            _ => continue,
        };
        for v in items {
            let get = |k: &str| v.get(k).map(s).unwrap_or_default();
            let id = if v.get("ID").is_some() {
                get("ID")
            } else {
                get("Id")
            };
            let name = get("Names")
                .split(',')
                .next()
                .unwrap_or("")
                .trim_start_matches('/')
                .to_string();
            if id.is_empty() && name.is_empty() {
                continue;
            }
            out.push(Container {
                id,
                name,
                image: get("Image"),
                state: get("State").to_ascii_lowercase(),
                status: get("Status"),
                command: v
                    .get("Command")
                    .map(|c| match c {
                        Value::String(x) => vec![x.trim_matches('"').to_string()],
                        other => strings(other),
                    })
                    .unwrap_or_default(),
                ..Default::default()
            });
        }
    }
    out
}

/// Adds restart policy, full command, mounts, compose origin and database
/// references from `inspect` output to the containers it describes.
pub fn apply_inspect(list: &mut [Container], text: &str) {
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(text.trim()) else {
        return;
    };
    for v in items {
        let id = v.get("Id").map(s).unwrap_or_default();
        let name = v
            .get("Name")
            .map(s)
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string();
        let Some(c) = list.iter_mut().find(|c| {
            (!c.id.is_empty() && id.starts_with(&c.id)) || (!name.is_empty() && c.name == name)
        }) else {
            continue;
        };
        if let Some(p) = v.pointer("/HostConfig/RestartPolicy/Name").map(s)
            && !p.is_empty()
        {
            c.restart_policy = Some(p);
        }
        let mut cmd = v
            .pointer("/Config/Entrypoint")
            .map(strings)
            .unwrap_or_default();
        cmd.extend(v.pointer("/Config/Cmd").map(strings).unwrap_or_default());
        if !cmd.is_empty() {
            c.command = cmd;
        }
        if let Some(Value::Array(ms)) = v.get("Mounts") {
            c.mounts = ms
                .iter()
                .map(|m| {
                    let t = m.get("Type").map(s).unwrap_or_default();
                    let src = match m.get("Name").map(s).filter(|n| !n.is_empty()) {
                        Some(n) if t == "volume" => n,
                        _ => m.get("Source").map(s).unwrap_or_default(),
                    };
                    let dst = m.get("Destination").map(s).unwrap_or_default();
                    format!("{t} {src} -> {dst}")
                })
                .collect();
        }
        let labels = v.pointer("/Config/Labels");
        let label = |k: &str| {
            labels
                .and_then(|l| l.get(k))
                .map(s)
                .filter(|x| !x.is_empty())
        };
        if let Some(files) = label("com.docker.compose.project.config_files") {
            c.compose = Some(match label("com.docker.compose.service") {
                Some(svc) => format!("{files} (service '{svc}')"),
                None => files,
            });
        }
        c.db_refs.clear();
        c.serves_db = None;
        for e in v.pointer("/Config/Env").map(strings).unwrap_or_default() {
            let Some((k, val)) = e.split_once('=') else {
                continue;
            };
            c.db_refs.extend(urls_in(val));
            if k == "POSTGRES_DB" {
                c.serves_db = Some(val.to_string());
            }
        }
        if c.serves_db.is_none() && c.image.contains("postgres") {
            c.serves_db = Some("postgres".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PS: &str = r#"{"Command":"\"docker-entrypoint.s…\"","CreatedAt":"2024-12-10 12:39:57 +0000 UTC","ID":"3f0a1b2c3d4e","Image":"postgres:15","Labels":"com.docker.compose.project=app","LocalVolumes":"1","Mounts":"app_pgdata","Names":"app-db-1","Networks":"app_default","Ports":"0.0.0.0:5432-\u003e5432/tcp","RunningFor":"2 hours ago","Size":"0B","State":"running","Status":"Up 2 hours"}
not json
{"AutoRemove":false,"Command":["sh","-c","sleep infinity"],"Id":"9a8b7c6d5e4f00","Image":"docker.io/library/alpine:3","Names":["sync-loop"],"State":"exited","Status":"Exited (0) 3 hours ago"}
"#;

    #[test]
    fn docker_and_podman_ps_lines() {
        let c = parse_ps(PS);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].name, "app-db-1");
        assert_eq!(c[0].state, "running");
        assert_eq!(c[1].name, "sync-loop");
        assert_eq!(c[1].command, vec!["sh", "-c", "sleep infinity"]);
    }

    #[test]
    fn inspect_adds_policy_mounts_and_references_without_secrets() {
        let mut c = parse_ps(PS);
        let inspect = r#"[{"Id":"3f0a1b2c3d4e5f60718293a4b5c6d7e8","Name":"/app-db-1","State":{"Status":"running","Running":true},
          "HostConfig":{"RestartPolicy":{"Name":"always","MaximumRetryCount":0}},
          "Mounts":[{"Type":"volume","Name":"app_pgdata","Source":"/var/lib/docker/volumes/app_pgdata/_data","Destination":"/var/lib/postgresql/data","Driver":"local","Mode":"z","RW":true,"Propagation":""}],
          "Config":{"Env":["POSTGRES_PASSWORD=hunter22","POSTGRES_DB=app","SYNC_URL=postgres://app:hunter22@db.ext:5432/TovPlay"],"Cmd":["postgres"],"Entrypoint":["docker-entrypoint.sh"],
            "Labels":{"com.docker.compose.project.config_files":"/opt/app/docker-compose.yml","com.docker.compose.service":"db"}}}]"#;
        apply_inspect(&mut c, inspect);
        let d = &c[0];
        assert_eq!(d.restart_policy.as_deref(), Some("always"));
        assert_eq!(d.command, vec!["docker-entrypoint.sh", "postgres"]);
        assert_eq!(
            d.mounts,
            vec!["volume app_pgdata -> /var/lib/postgresql/data"]
        );
        assert_eq!(
            d.compose.as_deref(),
            Some("/opt/app/docker-compose.yml (service 'db')")
        );
        assert_eq!(d.serves_db.as_deref(), Some("app"));
        assert_eq!(d.db_refs.len(), 1);
        assert_eq!(d.db_refs[0].host.as_deref(), Some("db.ext"));
        assert!(!format!("{d:?}").contains("hunter22"));
    }
}
