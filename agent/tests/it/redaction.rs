//! Private views: a viewer's token shows no file path, file name, station URI or command
//! argument, through every RPC that returns one (Watch, the journal export and the config
//! snapshot export included); a viewer made `--unredacted`, and operators, see them. The data is
//! redacted by the catcher: the redacted caller's responses do not hold it at all.

use edgebackup_proto::v1 as pb;
use edgebackup_testkit::eventually;
use pb::{
    catalog_service_client::CatalogServiceClient, journal_service_client::JournalServiceClient,
    package_service_client::PackageServiceClient, policy_service_client::PolicyServiceClient,
    source_service_client::SourceServiceClient, status_service_client::StatusServiceClient,
};
use prost::Message;

use crate::harness::*;

/// What must not leave the catcher for a redacted viewer: the file's name (in paths, manifests,
/// the catalog, the restore's arguments) and the station's directory.
const FILE_MARK: &str = "customer-1";
const STATION_MARK: &str = "vault-station";

/// Every viewer-readable answer, encoded, by RPC name.
async fn answers(
    world: &World,
    token: &str,
    source: &str,
    folder: &str,
    package_id: &str,
) -> Vec<(&'static str, Vec<u8>)> {
    let ch = world.catcher.channel_as(token).await.unwrap();
    let mut out: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let mut status = StatusServiceClient::new(ch.clone());
    out.push(("GetStatus", status.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner().encode_to_vec()));
    let mut watch = status.watch(pb::WatchRequest::default()).await.unwrap().into_inner();
    out.push(("Watch", watch.message().await.unwrap().unwrap().encode_to_vec()));
    let mut packages = PackageServiceClient::new(ch.clone());
    let list = pb::ListPackagesRequest { page_size: 100, ..Default::default() };
    out.push(("ListPackages", packages.list_packages(list).await.unwrap().into_inner().encode_to_vec()));
    let get = pb::GetPackageRequest { package_id: package_id.into(), without_manifest: false };
    out.push(("GetPackage", packages.get_package(get).await.unwrap().into_inner().encode_to_vec()));
    let mut sources = SourceServiceClient::new(ch.clone());
    out.push((
        "ListSources",
        sources.list_sources(pb::ListSourcesRequest {}).await.unwrap().into_inner().encode_to_vec(),
    ));
    let get = pb::GetSourceRequest { source_id: source.into() };
    out.push(("GetSource", sources.get_source(get).await.unwrap().into_inner().encode_to_vec()));
    let cmds = pb::ListCommandsRequest { limit: 100, ..Default::default() };
    out.push(("ListCommands", sources.list_commands(cmds).await.unwrap().into_inner().encode_to_vec()));
    let mut policy = PolicyServiceClient::new(ch.clone());
    out.push((
        "ListStations",
        policy.list_stations(pb::ListStationsRequest {}).await.unwrap().into_inner().encode_to_vec(),
    ));
    let snaps = policy.list_config_snapshots(pb::ListConfigSnapshotsRequest { limit: 10 }).await.unwrap().into_inner();
    let id = snaps.snapshots[0].snapshot_id;
    out.push(("ListConfigSnapshots", snaps.encode_to_vec()));
    let get = pb::GetConfigSnapshotRequest { snapshot_id: id };
    out.push(("GetConfigSnapshot", policy.get_config_snapshot(get).await.unwrap().into_inner().encode_to_vec()));
    let export = pb::ExportConfigSnapshotRequest { snapshot_id: id };
    out.push((
        "ExportConfigSnapshot",
        policy.export_config_snapshot(export).await.unwrap().into_inner().encode_to_vec(),
    ));
    let pending = pb::ListPendingChangesRequest { include_resolved: true, limit: 100 };
    out.push(("ListPendingChanges", policy.list_pending_changes(pending).await.unwrap().into_inner().encode_to_vec()));
    let mut journal = JournalServiceClient::new(ch.clone());
    let q = pb::QueryJournalRequest { limit: 1000, ..Default::default() };
    out.push(("QueryJournal", journal.query_journal(q).await.unwrap().into_inner().encode_to_vec()));
    let mut export = journal.export_journal(pb::ExportJournalRequest::default()).await.unwrap().into_inner();
    let mut all = Vec::new();
    while let Some(e) = export.message().await.unwrap() {
        all.extend(e.encode_to_vec());
    }
    out.push(("ExportJournal", all));
    let mut catalog = CatalogServiceClient::new(ch);
    let search = pb::SearchFilesRequest { source_id: source.into(), query: "csv".into(), ..Default::default() };
    out.push(("SearchFiles", catalog.search_files(search).await.unwrap().into_inner().encode_to_vec()));
    let cov = pb::GetCoverageRequest { source_id: source.into(), sample: 50 };
    out.push(("GetCoverage", catalog.get_coverage(cov).await.unwrap().into_inner().encode_to_vec()));
    let folders = pb::ListFoldersRequest { source_id: source.into() };
    out.push(("ListFolders", catalog.list_folders(folders).await.unwrap().into_inner().encode_to_vec()));
    let list = pb::ListFolderRequest {
        source_id: source.into(),
        folder: folder.into(),
        directory: "secrets".into(),
        ..Default::default()
    };
    out.push(("ListFolder", catalog.list_folder(list).await.unwrap().into_inner().encode_to_vec()));
    let state = pb::ListStateRequest { source_id: source.into(), folder: folder.into(), ..Default::default() };
    out.push(("ListState", catalog.list_state(state).await.unwrap().into_inner().encode_to_vec()));
    let versions = pb::ListVersionsRequest {
        source_id: source.into(),
        folder: folder.into(),
        path: format!("secrets/{FILE_MARK}.csv"),
        ..Default::default()
    };
    out.push(("ListVersions", catalog.list_versions(versions).await.unwrap().into_inner().encode_to_vec()));
    out
}

fn holds(bytes: &[u8], mark: &str) -> bool {
    bytes.windows(mark.len()).any(|w| w == mark.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_no_path_file_name_station_uri_or_command_argument() {
    let station =
        format!("[[stations]]\nid = \"hot\"\ntier = \"hot\"\nkind = \"local\"\nuri = \"$DIR/{STATION_MARK}\"\n");
    let world =
        World::with_catcher_config(&format!("initial_preset = \"cloud\"\nscheduler_interval_ms = 200\n{station}"))
            .await;
    let agent_station = format!(
        "[[stations]]\nid = \"hot\"\nkind = \"local\"\nuri = \"{}\"\n",
        world.path(&format!("{STATION_MARK}/")).display()
    );
    let config = world.agent_config("r", "edge-r", &agent_station, "mover = true\nbackup_stations = [\"hot\"]");
    let data = world.data("r");
    std::fs::create_dir_all(data.join("secrets")).unwrap();
    std::fs::write(data.join(format!("secrets/{FILE_MARK}.csv")), b"name,iban\nana,DE00").unwrap();
    let mut agent = Agent::start(&config).await;
    let first = world.completed("edge-r", 1, 60).await.remove(0);
    std::fs::write(data.join(format!("secrets/{FILE_MARK}.csv")), b"name,iban\nana,DE01").unwrap();
    world.completed("edge-r", 2, 60).await;
    let folder = data.display().to_string().trim_end_matches('/').to_owned();
    // A held deletion (it names the package's path) and a restore (its arguments name the file).
    let admin = world.catcher.admin_token();
    let mut packages = PackageServiceClient::new(world.channel().await);
    let held = packages
        .delete_package(pb::DeletePackageRequest { package_id: first.package_id.clone(), reason: "tidy".into() })
        .await
        .unwrap()
        .into_inner();
    assert!(held.pending.is_some(), "held for the protection delay");
    let restore = pb::CommandArgs {
        kind: Some(pb::command_args::Kind::Restore(pb::RestoreArgs {
            source_id: "edge-r".into(),
            folders: vec![folder.clone()],
            paths: vec![format!("secrets/{FILE_MARK}.csv")],
            target_dir: world.path(&format!("restore-{FILE_MARK}/")).display().to_string(),
            ..Default::default()
        })),
    };
    let request = pb::CreateCommandRequest {
        source_id: "edge-r".into(),
        kind: pb::CommandKind::Restore as i32,
        args: Some(restore),
        ..Default::default()
    };
    SourceServiceClient::new(world.channel().await).create_command(request).await.unwrap();
    // (Refused by the agent: the target is outside its restore_roots, and its answer names it.)
    eventually("the restore answered", 60, || async {
        let cmds = pb::ListCommandsRequest { kind: pb::CommandKind::Restore as i32, limit: 10, ..Default::default() };
        let list = SourceServiceClient::new(world.channel().await).list_commands(cmds).await.ok()?.into_inner();
        list.commands.iter().any(|c| !c.result_message.is_empty()).then_some(())
    })
    .await;

    // A config snapshot holding the stations.
    let snap = pb::CreateConfigSnapshotRequest { reason: "with stations".into() };
    PolicyServiceClient::new(world.channel().await).create_config_snapshot(snap).await.unwrap();

    let vera = world.catcher.person_token("vera", "viewer").unwrap();
    let private = answers(&world, &vera, "edge-r", &folder, &first.package_id).await;
    for (rpc, bytes) in &private {
        for mark in [FILE_MARK, STATION_MARK] {
            let at = bytes.windows(mark.len()).position(|w| w == mark.as_bytes());
            let around = at.map(|i| {
                String::from_utf8_lossy(&bytes[i.saturating_sub(150)..(i + 60).min(bytes.len())]).into_owned()
            });
            assert!(at.is_none(), "{rpc} shows a viewer {mark:?}: …{}…", around.unwrap_or_default());
        }
    }
    let shown = |name: &str| private.iter().find(|(rpc, _)| *rpc == name).map(|(_, b)| holds(b, "<redacted>")).unwrap();
    for rpc in
        ["ListPackages", "GetPackage", "ListStations", "ListCommands", "ListFolder", "ExportConfigSnapshot", "Watch"]
    {
        assert!(shown(rpc), "{rpc} says what it redacted");
    }

    // A viewer made --unredacted, and an admin, see them where they are.
    let open = world.catcher.cli(&["token", "create", "--name", "ulla", "--role", "viewer", "--unredacted"]).unwrap();
    let ulla = open.lines().map(str::trim).find(|l| l.starts_with("ebk_token_")).unwrap().to_owned();
    for token in [ulla.as_str(), admin.as_str()] {
        let full = answers(&world, token, "edge-r", &folder, &first.package_id).await;
        let has = |name: &str, mark: &str| full.iter().any(|(rpc, b)| *rpc == name && holds(b, mark));
        for rpc in ["GetPackage", "ListFolder", "SearchFiles", "ListVersions", "ListCommands"] {
            assert!(has(rpc, FILE_MARK), "{rpc} hides {FILE_MARK:?} from an unredacted caller");
        }
        for rpc in ["ListStations", "ExportConfigSnapshot", "GetConfigSnapshot"] {
            assert!(has(rpc, STATION_MARK), "{rpc} hides the station's URI from an unredacted caller");
        }
    }
    assert!(agent.terminate().await.success());
}
