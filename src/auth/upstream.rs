//! Upstream GitLab job tokens: a `CI_JOB_TOKEN` depot does not know is asked of the configured
//! GitLab (`GET /api/v4/job` with the token, GitLab's documented way to identify one), and the
//! job's project is mapped to a depot project. An answer is kept for a short, configured time
//! (a job token lives as long as its job; a revoked one may still work here until the answer
//! expires), refusals too, so a client retrying a bad token does not make depot ask GitLab each
//! time. depot's own secrets (by their prefix) are never sent to GitLab.

use super::federated::{Federated, Grant, Source};
use super::{Denied, Identities, Principal, hash_secret};
use crate::domain::{MembershipTarget, Role, Scope, TokenKind};
use crate::registry::Error;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a confirmed job is kept unless configured.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(30);

/// A GitLab project, as the mapping names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitlabProject {
    Id(i64),
    Path(String),
}

/// One GitLab project whose jobs may act on one depot project with `role`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectMapping {
    pub gitlab: GitlabProject,
    pub depot: String,
    pub role: Role,
}

impl ProjectMapping {
    /// `<gitlab id or path>=<depot project path>[:<role>]` (role developer unless given).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (gitlab, depot) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?} is not <gitlab project>=<depot project>[:role]"))?;
        let (depot, role) = match depot.rsplit_once(':') {
            Some((path, role)) => (path, role.parse::<Role>()?),
            None => (depot, Role::Developer),
        };
        let gitlab = gitlab.trim();
        let gitlab = match gitlab.parse::<i64>() {
            Ok(id) => GitlabProject::Id(id),
            Err(_) if gitlab.contains('/') => GitlabProject::Path(gitlab.to_string()),
            Err(_) => return Err(format!("{gitlab:?} is neither a project id nor a path")),
        };
        if !depot.contains('/') {
            return Err(format!(
                "{depot:?} is not a depot project path (group/project)"
            ));
        }
        Ok(Self {
            gitlab,
            depot: depot.trim().to_string(),
            role,
        })
    }

    /// A comma-separated list of mappings.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(Self::parse)
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// The GitLab's base URL (`https://gitlab.example.com`).
    pub url: String,
    pub projects: Vec<ProjectMapping>,
    pub cache_ttl: Duration,
}

/// What GitLab said about a job token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub project_id: i64,
    /// From the job's `web_url` (`<gitlab>/<project path>/-/jobs/<id>`), when it has one.
    pub project_path: Option<String>,
}

/// GitLab's answers by token hash: when asked, and the job (`None`: refused).
type Answers = HashMap<[u8; 32], (Instant, Option<Job>)>;

pub struct Upstream {
    config: UpstreamConfig,
    http: reqwest::Client,
    answers: Mutex<Answers>,
    asked: AtomicU64,
}

impl Upstream {
    pub fn new(config: UpstreamConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        let url = config.url.trim_end_matches('/').to_string();
        Self {
            config: UpstreamConfig { url, ..config },
            http,
            answers: Mutex::new(HashMap::new()),
            asked: AtomicU64::new(0),
        }
    }

    /// Requests made to the upstream GitLab so far.
    pub fn asked(&self) -> u64 {
        self.asked.load(Ordering::Relaxed)
    }

    /// The job `token` belongs to: `Ok(None)` when GitLab does not confirm it (unknown,
    /// finished or revoked), `Err` when GitLab could not be asked (never kept).
    pub async fn job(&self, token: &str) -> Result<Option<Job>, String> {
        let depots_own = [TokenKind::Personal, TokenKind::Deploy, TokenKind::Job]
            .iter()
            .any(|k| token.starts_with(k.secret_prefix()));
        if depots_own {
            return Ok(None);
        }
        let key = hash_secret(token);
        let ttl = self.config.cache_ttl;
        if let Some((at, job)) = self.lock().get(&key)
            && at.elapsed() < ttl
        {
            return Ok(job.clone());
        }
        let job = self.ask(token).await?;
        if !ttl.is_zero() {
            let mut kept = self.lock();
            if kept.len() >= 10_000 {
                kept.retain(|_, (at, _)| at.elapsed() < ttl);
            }
            kept.insert(key, (Instant::now(), job.clone()));
        }
        Ok(job)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Answers> {
        self.answers.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn ask(&self, token: &str) -> Result<Option<Job>, String> {
        self.asked.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}/api/v4/job", self.config.url);
        let response = self
            .http
            .get(&url)
            .header("JOB-TOKEN", token)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status();
        if matches!(status.as_u16(), 401 | 403 | 404) {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(format!("GET {url}: {status}"));
        }
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| format!("GET {url}: the answer is not a job: {e}"))?;
        Ok(Some(self.job_of(&body).ok_or_else(|| {
            format!("GET {url}: the answer lacks the job's id or project")
        })?))
    }

    /// The job in GitLab's `Entities::Ci::Job`: `id`, `pipeline.project_id`, `web_url`. The
    /// URL is GitLab's public one, which may not be the one depot asks at: past the configured
    /// URL when it starts with it (a GitLab under a path), else past the host.
    fn job_of(&self, body: &serde_json::Value) -> Option<Job> {
        let project_path = body["web_url"].as_str().and_then(|url| {
            let rest = match url.strip_prefix(&self.config.url) {
                Some(rest) => rest,
                None => url.split_once("://")?.1.split_once('/')?.1,
            };
            let (path, _) = rest.trim_start_matches('/').split_once("/-/jobs/")?;
            Some(path.to_string())
        });
        Some(Job {
            id: body["id"].as_i64()?,
            project_id: body["pipeline"]["project_id"].as_i64()?,
            project_path,
        })
    }

    /// The mapping that covers `job`'s GitLab project, by id or by path.
    fn mapping(&self, job: &Job) -> Option<&ProjectMapping> {
        self.config.projects.iter().find(|m| match &m.gitlab {
            GitlabProject::Id(id) => *id == job.project_id,
            GitlabProject::Path(path) => job.project_path.as_deref() == Some(path.as_str()),
        })
    }
}

pub(super) async fn authenticate(
    identities: &Identities,
    upstream: &Upstream,
    token: &str,
) -> Result<Principal, Error> {
    let job = match upstream.job(token).await {
        Ok(Some(job)) => job,
        Ok(None) => return Err(Denied::Unauthorized.into()),
        Err(e) => {
            tracing::warn!(error = %e, "could not ask the upstream GitLab about a job token");
            return Err(Denied::VouchUnavailable.into());
        }
    };
    let Some(mapping) = upstream.mapping(&job) else {
        tracing::info!(
            job = job.id,
            gitlab_project = job.project_id,
            "refused a GitLab job token: its project is not mapped to a depot project"
        );
        return Err(Denied::Forbidden.into());
    };
    let Some(project) = identities.project_by_path(&mapping.depot).await? else {
        tracing::warn!(depot_project = %mapping.depot, "a GitLab project maps to no depot project");
        return Err(Denied::Forbidden.into());
    };
    let federated = Federated {
        source: Source::GitlabJob {
            job_id: job.id,
            gitlab_project: job.project_id,
            gitlab_path: job.project_path.clone(),
            depot_project: project.id,
        },
        grants: vec![Grant {
            target: MembershipTarget::Project(project.id),
            role: mapping.role,
            scopes: vec![Scope::Api],
            rule: None,
        }],
    };
    Ok(Principal::Federated(Arc::new(federated)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_parse() {
        let m = ProjectMapping::parse("42=grp/app").unwrap();
        assert_eq!(m.gitlab, GitlabProject::Id(42));
        assert_eq!((m.depot.as_str(), m.role), ("grp/app", Role::Developer));
        let m = ProjectMapping::parse("team/tool=grp/tool:maintainer").unwrap();
        assert_eq!(m.gitlab, GitlabProject::Path("team/tool".into()));
        assert_eq!(m.role, Role::Maintainer);
        assert!(ProjectMapping::parse("42").is_err());
        assert!(ProjectMapping::parse("x=grp/app").is_err());
        assert!(ProjectMapping::parse("42=app").is_err());
        assert!(ProjectMapping::parse("42=grp/app:boss").is_err());
        assert_eq!(
            ProjectMapping::parse_list("1=a/b, 2=c/d,").unwrap().len(),
            2
        );
    }

    #[test]
    fn a_job_is_read_from_gitlabs_entity() {
        let upstream = Upstream::new(UpstreamConfig {
            url: "https://gitlab.example.com/".into(),
            projects: vec![],
            cache_ttl: DEFAULT_CACHE_TTL,
        });
        let body = serde_json::json!({
            "id": 8, "status": "running",
            "pipeline": {"id": 6, "project_id": 3},
            "web_url": "https://gitlab.example.com/team/tool/-/jobs/8",
        });
        assert_eq!(
            upstream.job_of(&body),
            Some(Job {
                id: 8,
                project_id: 3,
                project_path: Some("team/tool".into()),
            })
        );
        assert_eq!(upstream.job_of(&serde_json::json!({"id": 8})), None);
        // Asked at an internal URL, GitLab names its public one.
        let mut public = body.clone();
        public["web_url"] = "https://git.example.org/team/tool/-/jobs/8".into();
        let job = upstream.job_of(&public).unwrap();
        assert_eq!(job.project_path.as_deref(), Some("team/tool"));
    }
}
