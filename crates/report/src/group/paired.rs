//! The group report of the one-session before/during design (`paired-group`): the summary, the
//! contrast's statistic maps with its significant clusters and cluster table (the crossover
//! report's contrast section), the ROI paired t tests, methods and references.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cbflow_pipeline::catalogue::{GroupFile, StatMap};

use super::contrast::contrast_section;
use super::page::{finish_page, root_space, write_group_page};
use super::roi::numeric_table;
use crate::data::{self, fname};
use crate::html::{self, esc};
use crate::{ReportInputs, Result};

/// Writes `OUTPUT_DIR/group.html` for the paired design's contrast `contrast` (the
/// `paired-group` step's, `drug` by default) from what that step wrote.
pub fn paired_report(inputs: &ReportInputs, contrast: &str) -> Result<PathBuf> {
    write_group_page(inputs.output_dir, "paired group report", || {
        build(inputs.output_dir, contrast, inputs.resources)
    })
}

fn build(output_dir: &Path, c: &str, resources: Option<&Path>) -> Result<String> {
    let mut body = String::new();
    let mut nav = Vec::new();
    let space = root_space(output_dir)?;
    let stat_json = match &space {
        Some((s, r)) => data::json_opt(&data::group_sidecar(
            output_dir,
            &GroupFile::stat_map(s, r, c, StatMap::T),
        )?)?,
        None => None,
    };
    let get = |key: &str| {
        stat_json
            .as_ref()
            .and_then(|j| data::jtext(j, &[key]))
            .unwrap_or_else(|| "n/a".into())
    };
    let description = stat_json
        .as_ref()
        .and_then(|j| data::jtext(j, &["ContrastDescription"]))
        .unwrap_or_else(|| "during − before".into());
    let rois_path = data::group_file(output_dir, &GroupFile::paired_roi_ttests(c))?;
    let rois = data::table_opt(&rois_path)?;
    let n_sub = rois
        .as_ref()
        .and_then(|t| t.column("n").ok())
        .and_then(|n| n.first().map(|s| s.to_string()))
        .unwrap_or_else(|| "n/a".into());

    nav.push(("summary".to_string(), "Summary".to_string()));
    body.push_str("<section id=\"summary\"><h2>Summary</h2><dl class=\"summary\">");
    let _ = write!(
        body,
        "<dt>Design</dt><dd>one session per subject, a run before and a run during the drug (paired)</dd><dt>Subjects analysed</dt><dd>{}</dd><dt>Template space</dt><dd>{}</dd><dt>Contrast</dt><dd><b>{}</b>: {}</dd><dt>Permutations</dt><dd>{}</dd><dt>Smoothing</dt><dd>{} mm FWHM</dd><dt>Cluster-forming threshold</dt><dd>t &gt; {}</dd>",
        esc(&n_sub),
        space
            .as_ref()
            .map(|(s, r)| format!("{} (res-{})", esc(s), esc(r)))
            .unwrap_or_else(|| "none".into()),
        esc(c),
        esc(&description),
        esc(&get("Permutations")),
        esc(&get("SmoothingFWHM")),
        esc(&get("ClusterFormingThreshold")),
    );
    body.push_str("</dl></section>\n");

    nav.push(("voxelwise".into(), "Voxelwise".into()));
    body.push_str("<section id=\"voxelwise\"><h2>Voxelwise results</h2>");
    match &space {
        Some((s, r)) => match data::load_template(s, resources) {
            Ok(tpl) => body.push_str(&contrast_section(output_dir, s, r, &tpl, c, &description)?),
            Err(why) => body.push_str(&html::missing(&why)),
        },
        None => body.push_str(&html::missing(
            "no group-level statistical maps (space-*_statmap.nii.gz) at the derivatives root",
        )),
    }
    body.push_str("</section>\n");

    nav.push(("roi".into(), "ROIs".into()));
    body.push_str("<section id=\"roi\"><h2>Regions of interest</h2>");
    match &rois {
        Some(t) => {
            let _ = write!(
                body,
                "<p>Paired t tests of the regional CBF change ({}), as {} has them.</p>",
                esc(&description),
                esc(&fname(&rois_path))
            );
            body.push_str(&numeric_table(
                "roi-tests",
                t,
                &rois_path,
                &["region"],
                "p",
            )?);
        }
        None => body.push_str(&html::missing(&format!(
            "no ROI table ({})",
            fname(&rois_path)
        ))),
    }
    body.push_str("</section>\n");

    nav.push(("methods".into(), "Methods".into()));
    body.push_str("<section id=\"methods\"><h2>Methods</h2><div class=\"methods\"><p>");
    let _ = write!(
        body,
        "Each subject's template-space CBF map of the run during the drug minus the run before it, smoothed with a Gaussian kernel of {} mm FWHM inside the common brain mask, was tested voxelwise by sign-flipping ({} permutations, seed {}; Nichols &amp; Holmes 2002; Winkler et al. 2014). Family-wise error was controlled by the maximum statistic over the mask for the t statistic, for threshold-free cluster enhancement (Smith &amp; Nichols 2009) and for cluster extent at t &gt; {} (degrees of freedom {}). Regional changes were tested with paired t tests.",
        esc(&get("SmoothingFWHM")),
        esc(&get("Permutations")),
        esc(&get("Seed")),
        esc(&get("ClusterFormingThreshold")),
        esc(&get("DegreesOfFreedom")),
    );
    body.push_str("</p></div></section>\n");
    Ok(finish_page(
        "cbflow group report (before/during)",
        &n_sub,
        nav,
        body,
    ))
}
