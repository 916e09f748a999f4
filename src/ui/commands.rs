//! The ready-to-copy commands of a package page: for the newest file of each name, how to
//! fetch exactly it with curl, wget, python-gitlab, `depot pull`, a `.gitlab-ci.yml` job and a
//! GitHub Actions step (the last two without a stored secret: a job token, an OIDC ID token).

use crate::domain::{Package, PackageFile, Project};
use maud::{Markup, html};

/// Commands are shown for at most this many files of a package.
const COMMANDS_FOR: usize = 10;

/// `text` in single quotes for a POSIX shell (a quote inside closed, escaped, reopened).
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The commands for one file, as (label, text).
fn commands(
    api_base: &str,
    project: &Project,
    package: &Package,
    file: &PackageFile,
) -> Vec<(&'static str, String)> {
    let url = crate::api::file_url(api_base, project.id, package, file);
    let shown = file.file_name.display();
    let out = shown.rsplit('/').next().unwrap_or(&shown).to_string();
    let (name, version, id) = (package.name.as_str(), package.version.as_str(), project.id);
    // A file's directories may hold quotes and the like: written as a JSON string, which is a
    // valid Python string literal too, and quoted for the shell.
    let py_name = serde_json::to_string(&shown).unwrap_or_default();
    let dirs = shown.rsplit_once('/').map(|(dirs, _)| dirs);
    let path_flag = dirs
        .map(|d| format!(" --path {}", shell_quote(d)))
        .unwrap_or_default();
    vec![
        (
            "curl",
            format!(
                "curl --fail --location --header \"PRIVATE-TOKEN: $TOKEN\" --output {out} \"{url}\""
            ),
        ),
        (
            "wget",
            format!("wget --header=\"PRIVATE-TOKEN: $TOKEN\" --output-document={out} \"{url}\""),
        ),
        (
            "python-gitlab",
            format!(
                "import gitlab\ngl = gitlab.Gitlab(\"{api_base}\", private_token=TOKEN)\ndata = gl.projects.get({id}, lazy=True).generic_packages.download(\n    package_name=\"{name}\", package_version=\"{version}\", file_name={py_name})"
            ),
        ),
        (
            "depot pull",
            format!(
                "depot pull {out} --url \"{api_base}\" --project {id} --package {name} --version {version}{path_flag}"
            ),
        ),
        (
            ".gitlab-ci.yml",
            format!(
                "fetch:\n  script:\n    - 'curl --fail --location --header \"JOB-TOKEN: $CI_JOB_TOKEN\" --output {out} \"{url}\"'"
            ),
        ),
        (
            "GitHub Actions",
            format!(
                "permissions:\n  id-token: write\nsteps:\n  - run: |\n      ID_TOKEN=$(curl -sH \"Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN\" \"$ACTIONS_ID_TOKEN_REQUEST_URL&audience=depot\" | jq -r .value)\n      curl --fail --location --header \"JOB-TOKEN: $ID_TOKEN\" --output {out} \"{url}\""
            ),
        ),
    ]
}

/// The "Use it" section of a package page: the commands of the newest file of each name.
pub fn for_package(
    api_base: &str,
    project: &Project,
    package: &Package,
    files: &[PackageFile],
) -> Markup {
    // The newest file of each name, the first few: commands are a page's largest part.
    let mut seen = std::collections::HashSet::new();
    let newest: Vec<&PackageFile> = files
        .iter()
        .filter(|f| seen.insert(f.file_name.as_str()))
        .take(COMMANDS_FOR)
        .collect();
    html! {
        h2 { "Use it" }
        p.muted { "Replace " code { "$TOKEN" } " with a personal access token. The CI snippets need no stored secret: GitLab's job token, or a GitHub OIDC ID token a trust rule accepts." }
        @for (i, file) in newest.iter().enumerate() {
            h2 { (file.file_name.display()) }
            @for (j, (label, text)) in commands(api_base, project, package, file).into_iter().enumerate() {
                @let id = format!("cmd-{i}-{j}");
                p { strong { (label) } button.copy.secondary type="button" data-copy=(id) hidden { "Copy" } }
                pre id=(id) { (text) }
            }
        }
    }
}
