//! `starling summarize`: one summary of one entity from the stored posts,
//! printed, for a quick look without the server.

use super::service::{summarize, Sources};
use crate::archive::PostArchive;
use crate::cli::SummarizeArgs;
use crate::domain::{EntityKind, EntityRef};
use crate::store::embedded::EmbeddedStore;
use crate::web::queries::parse_time;
use anyhow::{anyhow, Context as _};
use std::sync::Arc;

/// Runs the command.
pub fn run(args: SummarizeArgs) -> anyhow::Result<()> {
    let mut config = args.overrides.load()?;
    if let Some(m) = &args.model {
        config.summaries.model_path = Some(m.clone());
    }
    if args.extractive {
        config.summaries.model_path = None;
    }
    let kind = EntityKind::parse(&args.kind)
        .ok_or_else(|| anyhow!("unknown entity kind `{}`", args.kind))?;
    let entity = EntityRef::new(kind, args.id.clone());
    let time = |t: &str| parse_time(t).map_err(|e| anyhow!("{e}"));
    let to_ms = match &args.to {
        Some(t) => time(t)?,
        None => chrono::Utc::now().timestamp_millis(),
    };
    let (from_ms, to_ms) = match &args.from {
        Some(f) => (time(f)?, to_ms),
        None => super::service::ending_at(config.summaries.window_s as i64 * 1_000, to_ms),
    };
    let dir = &config.store.data_dir;
    let store = EmbeddedStore::open(&config.store).with_context(|| {
        format!(
            "opening the store in {} (is a starling server using it?)",
            dir.display()
        )
    })?;
    let archive_dir = dir.join("archive");
    let archive = PostArchive::open(&archive_dir)
        .with_context(|| format!("opening the post archive in {}", archive_dir.display()))?;
    let sources = Sources {
        store: Arc::new(store),
        archive: Arc::new(archive),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let summary = runtime.block_on(async {
        let generator = super::load_generator(&config.summaries).await?;
        let s = summarize(
            &sources,
            generator.as_deref(),
            &entity,
            from_ms,
            to_ms,
            &config.summaries,
            config.entities.kol_followers,
        )
        .await?;
        Ok::<_, anyhow::Error>(s)
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        let how = match (&summary.model, &summary.fallback_reason) {
            (Some(m), _) => format!("llm, {m}"),
            (None, Some(r)) => format!("extractive: {r}"),
            (None, None) => "extractive".into(),
        };
        println!(
            "{}:{}  {} .. {}  ({how}, {} ms)\n\n{}",
            entity.kind,
            entity.id,
            crate::web::queries::rfc3339(summary.from_ms),
            crate::web::queries::rfc3339(summary.to_ms),
            summary.took_ms,
            summary.text
        );
    }
    Ok(())
}
