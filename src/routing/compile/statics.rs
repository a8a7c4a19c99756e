//! `[[static]]`: folders served under URL prefixes.

use toml::de::DeValue;

use super::super::file::{Node, Reader, get, type_name};
use super::super::table::StaticMount;
use super::Env;

pub(super) fn compile_statics(node: &Node<'_>, env: &Env<'_>, r: &mut Reader) -> Vec<StaticMount> {
    let DeValue::Array(items) = node.get_ref() else {
        r.error(
            node.span(),
            format!(
                "`static` is {}, expected [[static]] tables",
                type_name(node.get_ref())
            ),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items.iter() {
        let Some(t) = r.table(item, "static") else {
            continue;
        };
        r.known_keys(t, &["mount", "dir", "index"], "[[static]]");
        let mount = match get(t, "mount").map(|n| (n, r.string(n, "mount"))) {
            Some((_, Some(m))) if m.starts_with('/') => m,
            Some((n, Some(m))) => {
                r.error(n.span(), format!("mount `{m}` must start with `/`"));
                continue;
            }
            Some((_, None)) => continue,
            None => {
                r.error(
                    item.span(),
                    "[[static]] needs `mount`, the URL prefix, like \"/\"",
                );
                continue;
            }
        };
        let Some(dir_node) = get(t, "dir") else {
            r.error(
                item.span(),
                "[[static]] needs `dir`, the folder to serve, like \"public\"",
            );
            continue;
        };
        let Some(dir) = r.string(dir_node, "dir") else {
            continue;
        };
        let path = env.base_dir.join(&dir);
        if !path.is_dir() {
            r.error(
                dir_node.span(),
                format!("folder `{dir}` does not exist (paths are relative to the routes file)"),
            );
            continue;
        }
        if path.canonicalize().is_ok_and(|p| p.parent().is_none()) {
            r.error(
                dir_node.span(),
                format!("`{dir}` is the root of the file system: every file would be served"),
            );
            continue;
        }
        let index = get(t, "index").and_then(|n| r.string(n, "index"));
        let mount = if mount.len() > 1 {
            mount.trim_end_matches('/').to_owned()
        } else {
            mount
        };
        out.push(StaticMount {
            mount,
            dir: path,
            index,
        });
    }
    out
}
