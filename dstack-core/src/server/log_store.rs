//! Job logs on disk: one JSON-lines file per job submission, under
//! `<server dir>/logs/<project id>/<run id>/<job id>.jsonl`. Paths are made of ids the server
//! generated, never of names from a request. Pages are read from a byte offset (the paging
//! token), so a poll costs the size of its page, not of the log.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::api::runs::LogEvent;

/// The most bytes one page reads.
const MAX_PAGE_BYTES: u64 = 4 * 1024 * 1024;

/// Where logs live.
#[derive(Debug, Clone)]
pub(crate) struct LogStore {
    root: PathBuf,
    legacy_root: PathBuf,
}

/// One page of a log.
#[derive(Debug, Default)]
pub(crate) struct Page {
    pub(crate) events: Vec<LogEvent>,
    /// Where the next page starts, if the page was cut short.
    pub(crate) next: Option<u64>,
}

fn is_id(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

impl LogStore {
    pub(crate) fn new(server_dir: &Path) -> LogStore {
        LogStore {
            root: server_dir.join("logs"),
            legacy_root: server_dir.join("projects"),
        }
    }

    /// The log file of a job submission; `None` unless all three are ids.
    pub(crate) fn path(&self, project_id: &str, run_id: &str, job_id: &str) -> Option<PathBuf> {
        (is_id(project_id) && is_id(run_id) && is_id(job_id)).then(|| {
            self.root
                .join(project_id)
                .join(run_id)
                .join(format!("{job_id}.jsonl"))
        })
    }

    /// Where servers before this layout wrote the log (project and run names, both already
    /// validated when the run was stored).
    pub(crate) fn legacy_path(
        &self,
        project: &str,
        run_name: &str,
        job_id: &str,
    ) -> Option<PathBuf> {
        let safe = |s: &str| crate::config::run::is_valid_resource_name(s) || s == "main";
        (safe(project) && safe(run_name) && is_id(job_id)).then(|| {
            self.legacy_root
                .join(project)
                .join("logs")
                .join(run_name)
                .join(format!("{job_id}.jsonl"))
        })
    }
}

/// Reads up to `limit` events after byte `start` (oldest first), or before it (newest first).
pub(crate) fn read_page(
    path: &Path,
    start: Option<u64>,
    limit: usize,
    descending: bool,
) -> std::io::Result<Page> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Page::default()),
        Err(e) => return Err(e),
    };
    let size = file.metadata()?.len();
    if descending {
        read_backward(&mut file, start.unwrap_or(size).min(size), limit)
    } else {
        read_forward(&mut file, start.unwrap_or(0), size, limit)
    }
}

fn parse(line: &[u8]) -> Option<LogEvent> {
    serde_json::from_slice(line).ok()
}

fn read_forward(
    file: &mut std::fs::File,
    start: u64,
    size: u64,
    limit: usize,
) -> std::io::Result<Page> {
    if start >= size {
        return Ok(Page::default());
    }
    let want = (size - start).min(MAX_PAGE_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity(want as usize);
    file.take(want).read_to_end(&mut buf)?;
    let mut events = Vec::new();
    let mut consumed = 0usize;
    for line in buf.split_inclusive(|b| *b == b'\n') {
        // Only complete lines: a writer may be in the middle of the next one.
        if events.len() >= limit || line.last() != Some(&b'\n') {
            break;
        }
        consumed += line.len();
        if let Some(e) = parse(&line[..line.len() - 1]) {
            events.push(e);
        }
    }
    let end = start + consumed as u64;
    let more = end < size && (events.len() >= limit || want < size - start);
    Ok(Page {
        events,
        next: more.then_some(end),
    })
}

fn read_backward(file: &mut std::fs::File, end: u64, limit: usize) -> std::io::Result<Page> {
    let from = end.saturating_sub(MAX_PAGE_BYTES);
    file.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::with_capacity((end - from) as usize);
    file.take(end - from).read_to_end(&mut buf)?;
    // Drop a partial last line (only complete lines are read).
    let complete = buf.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
    let body = &buf[..complete];
    let mut events = Vec::new();
    let mut cursor = complete;
    let mut oldest = from + complete as u64;
    let lines: Vec<&[u8]> = body.split_inclusive(|b| *b == b'\n').collect();
    // The first line may be cut by the page start (unless the page starts at 0).
    let skip_first = usize::from(from > 0);
    for line in lines.iter().skip(skip_first).rev() {
        if events.len() >= limit {
            break;
        }
        cursor -= line.len();
        oldest = from + cursor as u64;
        if let Some(e) = parse(&line[..line.len().saturating_sub(1)]) {
            events.push(e);
        }
    }
    Ok(Page {
        events,
        next: (oldest > 0).then_some(oldest),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_log(lines: usize, partial: bool) -> (PathBuf, Vec<u8>) {
        let dir = std::env::temp_dir().join(format!("dstack-logs-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).ok();
        let path = dir.join("log.jsonl");
        let mut text = Vec::new();
        for i in 0..lines {
            text.extend_from_slice(
                format!(r#"{{"timestamp":"t","log_source":"stdout","message":"{i}"}}"#).as_bytes(),
            );
            text.push(b'\n');
        }
        if partial {
            text.extend_from_slice(br#"{"timestamp":"t","log_sour"#);
        }
        std::fs::write(&path, &text).ok();
        (path, text)
    }

    fn messages(p: &Page) -> Vec<String> {
        p.events.iter().map(|e| e.message.clone()).collect()
    }

    #[test]
    fn pages_forward_by_offset_to_the_end() {
        let (path, _) = write_log(25, true);
        let mut seen = Vec::new();
        let mut token = None;
        loop {
            let page = read_page(&path, token, 10, false).unwrap_or_default();
            seen.extend(messages(&page));
            match page.next {
                Some(n) => token = Some(n),
                None => break,
            }
        }
        let expected: Vec<String> = (0..25).map(|i| i.to_string()).collect();
        assert_eq!(
            seen, expected,
            "each line once, in order; the partial line waits"
        );
    }

    #[test]
    fn pages_backward() {
        let (path, _) = write_log(25, false);
        let first = read_page(&path, None, 10, true).unwrap_or_default();
        assert_eq!(messages(&first).first().map(String::as_str), Some("24"));
        assert_eq!(first.events.len(), 10);
        let second = read_page(&path, first.next, 10, true).unwrap_or_default();
        assert_eq!(messages(&second).first().map(String::as_str), Some("14"));
        let third = read_page(&path, second.next, 10, true).unwrap_or_default();
        assert_eq!(third.events.len(), 5);
        assert_eq!(third.next, None);
    }

    #[test]
    fn odd_tokens_are_harmless() {
        let (path, text) = write_log(3, false);
        assert!(read_page(&path, Some(u64::MAX), 10, false).is_ok_and(|p| p.events.is_empty()));
        assert!(read_page(&path, Some(5), 10, false).is_ok());
        assert!(read_page(&path, Some(text.len() as u64 + 10), 10, true).is_ok());
        assert!(read_page(Path::new("/nonexistent/x"), None, 10, false).is_ok());
    }
}
