//! Parsing: the shipped workflows, the schema, and every kind of bad file with its position.

use cbflow_workflow::{
    CrossoverGroupParams, Error, Input, Op, OpKind, TailSpec, TemplateName, Workflow,
};

use crate::{contains_all, workflows_dir};

#[test]
fn builtin_workflow_parses_with_the_study_design() {
    let w = Workflow::builtin();
    assert_eq!(w.name, "ketamine-naltrexone-crossover");
    let from_file =
        Workflow::from_path(&workflows_dir().join("ketamine-naltrexone-crossover.yaml")).unwrap();
    assert_eq!(from_file.steps, w.steps);
    let cbf = w.step("cbf").unwrap();
    assert_eq!(*cbf.op, OpKind::AslCbf);
    let Op::AslCbf(p) = &cbf.params.value else {
        panic!("asl-cbf params")
    };
    assert_eq!(p.template, TemplateName::Mni152NLin6Asym);
    assert_eq!(p.bs_efficiency_per_pulse, 0.95);
    let Input::Bids(q) = &cbf.inputs["asl"].value else {
        panic!("bids input")
    };
    assert_eq!(
        (q.datatype.as_deref(), q.suffix.as_str()),
        (Some("perf"), "asl")
    );
    let g = w.step("crossover").unwrap();
    let Op::CrossoverGroup(p) = &g.params.value else {
        panic!("crossover-group params")
    };
    assert_eq!(p.permutations, 10_000);
    assert_eq!(p.cluster_threshold, 3.1);
    assert_eq!(p.design.pretreatment_column, "pretreatment");
    assert_eq!(
        (
            p.design.run_before.as_deref(),
            p.design.run_during.as_deref()
        ),
        (Some("1"), Some("2"))
    );
    let d = p.design.study_design();
    assert_eq!(
        (d.before.to_string(), d.during.to_string()),
        ("run-1".into(), "run-2".into())
    );
    let Input::Step(r) = &g.inputs["cbf"].value else {
        panic!("step input")
    };
    assert_eq!(
        (r.step.as_str(), r.output.as_str()),
        ("cbf", "cbf-template")
    );
    // positions are recorded
    assert_eq!((cbf.id.pos.line, cbf.id.pos.column), (16, 9));
    assert_eq!(w.step_order().unwrap(), vec![0, 1, 2]);
}

#[test]
fn before_after_example_parses() {
    let w = Workflow::from_path(&workflows_dir().join("examples/before-after.yaml")).unwrap();
    let g = w.step("drug-effect").unwrap();
    let Op::PairedGroup(p) = &g.params.value else {
        panic!("paired-group params")
    };
    assert_eq!((p.permutations, p.seed), (5000, 7));
    assert_eq!(
        p.cluster_threshold, 3.1,
        "unset parameters take their defaults"
    );
    assert_eq!(p.design.session, None);
    assert_eq!((p.contrast.as_str(), p.tail), ("drug", TailSpec::TwoSided));
    // what the reports are given: the paired step's runs
    let d = w.study_design();
    assert_eq!(
        (d.before.to_string(), d.during.to_string()),
        ("run-1".into(), "run-2".into())
    );
    // another lab's drug and hypothesis; a name that cannot be a BIDS label is refused
    let text = std::fs::read_to_string(workflows_dir().join("examples/before-after.yaml"))
        .unwrap()
        .replace("contrast: drug", "contrast: psilocybin")
        .replace("tail: two-sided", "tail: positive");
    let w = Workflow::parse(&text, "edited.yaml").unwrap();
    let Op::PairedGroup(p) = &w.step("drug-effect").unwrap().params.value else {
        panic!("paired-group params")
    };
    assert_eq!(
        (p.contrast.as_str(), p.tail),
        ("psilocybin", TailSpec::Positive)
    );
    let bad = text.replace("contrast: psilocybin", "contrast: \"drug effect\"");
    let e = Workflow::parse(&bad, "bad.yaml").unwrap_err().to_string();
    assert!(e.contains("letters and digits"), "{e}");
}

/// The checked-in schema is the one the types generate. Regenerate with
/// `CBFLOW_BLESS=1 cargo nextest run -p cbflow-workflow schema`.
#[test]
fn schema_is_up_to_date() {
    let path = workflows_dir().join("cbflow-workflow.schema.json");
    let now = Workflow::json_schema();
    if std::env::var_os("CBFLOW_BLESS").is_some() {
        std::fs::write(&path, &now).unwrap();
    }
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        old == now,
        "{} is stale: regenerate it with `CBFLOW_BLESS=1 cargo nextest run -p cbflow-workflow schema`",
        path.display()
    );
    // it documents every field, including the operations' parameters
    for needle in [
        "\"asl-cbf\"",
        "\"crossover-group\"",
        "\"paired-group\"",
        "bs-efficiency-per-pulse",
        "pretreatment-column",
        "Sign-flip permutations per contrast",
        "\"additionalProperties\": false",
    ] {
        assert!(now.contains(needle), "schema lacks {needle}");
    }
}

const GOOD: &str = "\
version: 1
name: t
steps:
  - id: cbf
    op: asl-cbf
    inputs:
      asl: {bids: {datatype: perf, suffix: asl}}
    params:
      template: phantom
  - id: group
    op: crossover-group
    inputs:
      cbf: {step: cbf, output: cbf-template}
    params:
      permutations: 100
";

/// `GOOD` with line `line` (1-based) replaced by `with`.
fn edit(line: usize, with: &str) -> String {
    let mut v: Vec<&str> = GOOD.lines().collect();
    v[line - 1] = with;
    v.join("\n") + "\n"
}

/// `GOOD` with the parameter `key: value` added to the crossover-group step (the last).
fn with_group_param(key: &str, value: &str) -> String {
    format!("{GOOD}      {key}: {value}\n")
}

/// The parameters of the crossover-group step (the second) of `text`, which must parse.
fn crossover_params(text: &str) -> CrossoverGroupParams {
    match Workflow::parse(text, "good.yaml").unwrap().steps[1]
        .params
        .value
    {
        Op::CrossoverGroup(ref p) => p.clone(),
        _ => panic!("not a crossover group step"),
    }
}

/// Parses `text` as `bad.yaml` and returns `(line, column, message)` of the error.
fn error_at(text: &str) -> (u64, u64, String) {
    match Workflow::parse(text, "bad.yaml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => {
            let shown = e.to_string();
            let (line, column, message) = match &e {
                Error::Parse {
                    line,
                    column,
                    message,
                    ..
                }
                | Error::Invalid {
                    line,
                    column,
                    message,
                    ..
                } => (*line, *column, message.clone()),
                other => panic!("unexpected error {other:?}"),
            };
            assert!(
                shown.starts_with(&format!("bad.yaml:{line}:{column}: ")),
                "{shown}"
            );
            (line, column, message)
        }
    }
}

/// Asserts that `text` is refused at `at` (line, column) with a message naming every one of
/// `needles`.
fn refused_at(text: &str, at: (u64, u64), needles: &[&str]) {
    let (l, c, m) = error_at(text);
    assert_eq!((l, c), at, "{m}");
    contains_all(&m, needles);
}

/// Asserts that `text` is refused on line `line` with a message naming every one of `needles`.
fn refused_on_line(text: &str, line: u64, needles: &[&str]) {
    let (l, _, m) = error_at(text);
    assert_eq!(l, line, "{m}");
    contains_all(&m, needles);
}

/// Asserts that `text` is refused with a message naming every one of `needles`.
fn refused_with(text: &str, needles: &[&str]) {
    let (_, _, m) = error_at(text);
    contains_all(&m, needles);
}

#[test]
fn good_text_parses() {
    Workflow::parse(GOOD, "good.yaml").unwrap();
}

#[test]
fn unknown_key_in_params_is_located() {
    refused_at(
        &edit(9, "      templat: phantom"),
        (9, 7),
        &["unknown field `templat`"],
    );
}

#[test]
fn unknown_key_in_step_is_located() {
    refused_at(&edit(8, "    parms:"), (8, 5), &["unknown field `parms`"]);
}

#[test]
fn unknown_top_level_key_is_located() {
    refused_at(&edit(2, "nmae: t"), (2, 1), &["unknown field `nmae`"]);
}

#[test]
fn unknown_key_in_bids_query_is_located() {
    refused_at(
        &edit(7, "      asl: {bids: {datatype: perf, sufix: asl}}"),
        (7, 36),
        &["unknown field `sufix`"],
    );
}

#[test]
fn wrong_type_is_located() {
    refused_at(
        &edit(15, "      permutations: many"),
        (15, 21),
        &["invalid"],
    );
}

#[test]
fn yaml_1_1_boolean_is_rejected() {
    let text = GOOD.replace(
        "      template: phantom",
        "      template: phantom\n      realign: yes",
    );
    refused_at(&text, (10, 16), &[]);
}

#[test]
fn unknown_operation_is_located() {
    refused_at(&edit(5, "    op: asl-cfb"), (5, 9), &["asl-cfb", "asl-cbf"]);
}

#[test]
fn reading_an_output_nobody_makes_is_located() {
    refused_at(
        &edit(13, "      cbf: {step: cbf, output: cbf-tempalte}"),
        (13, 32),
        &["cbf-tempalte", "cbf-template"],
    );
    // an output that exists only with a template
    let text = GOOD.replace("template: phantom", "template: none");
    refused_at(&text, (13, 32), &["template other than `none`"]);
}

#[test]
fn reading_a_missing_step_is_located() {
    refused_at(
        &edit(13, "      cbf: {step: cfb, output: cbf-template}"),
        (13, 19),
        &["`cfb`, which does not exist"],
    );
}

#[test]
fn cycle_is_located_and_named() {
    let text = "\
version: 1
name: t
steps:
  - id: a
    op: crossover-group
    inputs:
      cbf: {step: b, output: statmaps}
    params: {}
  - id: b
    op: paired-group
    inputs:
      cbf: {step: a, output: statmaps}
    params: {}
";
    refused_at(text, (7, 19), &["cycle: a ← b ← a"]);
    // a step reading itself
    let text = "\
version: 1
name: t
steps:
  - id: a
    op: crossover-group
    inputs:
      cbf: {step: a, output: statmaps}
    params: {}
";
    refused_at(text, (7, 19), &["cycle: a ← a"]);
}

#[test]
fn duplicate_ids_missing_inputs_and_ranges_are_located() {
    refused_at(&edit(10, "  - id: cbf"), (10, 9), &["duplicate step id"]);
    // the group step without its input
    let text = GOOD.replace(
        "    inputs:\n      cbf: {step: cbf, output: cbf-template}\n",
        "",
    );
    refused_at(&text, (10, 5), &["needs input `cbf`"]);
    // a parameter out of range: located at `params`
    refused_at(
        &edit(15, "      permutations: 0"),
        (15, 7),
        &["permutations"],
    );
    // an input slot the operation does not have
    refused_at(
        &edit(7, "      asll: {bids: {datatype: perf, suffix: asl}}"),
        (7, 13),
        &["no input `asll`"],
    );
    // a version this build does not read
    refused_at(&edit(1, "version: 2"), (1, 10), &["version 2"]);
}

#[test]
fn file_errors_name_the_file() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("w.yaml");
    std::fs::write(&p, edit(9, "      templat: phantom")).unwrap();
    let e = Workflow::from_path(&p).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}:9:7: ", p.display())), "{e}");
    assert!(
        e.contains("templat: phantom\n") && e.contains("^"),
        "snippet: {e}"
    );
}

#[test]
fn contrasts_are_declared_and_checked() {
    let with = |contrasts: &str| GOOD.to_string() + "      contrasts:\n" + contrasts;
    // a contrast beyond the study's four: naltrexone's own effect on baseline CBF
    let p = crossover_params(&with(
        "        - name: naltrexoneBaseline\n          weights: {naltrexone-before: 1, placebo-before: -1}\n          tail: two-sided\n",
    ));
    let c = p.group_contrasts();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].name, "naltrexoneBaseline");
    assert_eq!(c[0].contrast.weights(), [-1.0, 0.0, 1.0, 0.0]);
    assert_eq!(c[0].tail, cbflow_pipeline::Tail::TwoSided);
    // left out: the study's four
    let p = crossover_params(GOOD);
    let names: Vec<String> = p.group_contrasts().into_iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "ketamineUnderPlacebo",
            "ketamineUnderNaltrexone",
            "ketaminePooled",
            "interaction"
        ]
    );
    // weights that are not a within-subject difference: located at `params`
    refused_at(
        &with("        - name: during\n          weights: {placebo-during: 1}\n"),
        (15, 7),
        &["contrasts: contrast during", "not 0"],
    );
    // a name that cannot be a BIDS entity value
    refused_with(
        &with(
            "        - name: ket-pla\n          weights: {placebo-during: 1, placebo-before: -1}\n",
        ),
        &["letters and digits"],
    );
    // the declared contrasts of the built-in workflow are the defaults
    let b = Workflow::builtin();
    let Op::CrossoverGroup(p) = &b.step("crossover").unwrap().params.value else {
        panic!("crossover-group params")
    };
    assert_eq!(
        p.group_contrasts(),
        cbflow_pipeline::GroupContrast::defaults(&cbflow_pipeline::StudyDesign::default())
    );
    // the built-in workflow's regions are the defaults
    let Op::AslCbf(a) = &b.step("cbf").unwrap().params.value else {
        panic!("asl-cbf params")
    };
    assert_eq!(a.regions(), Some(cbflow_pipeline::default_rois()));
    assert_eq!(p.rois, cbflow_pipeline::GroupOptions::default_rois());
    assert_eq!(p.baseline_roi, "ACC_sub");
    // the same name twice
    let one = "        - name: a\n          weights: {placebo-during: 1, placebo-before: -1}\n";
    refused_with(&with(&format!("{one}{one}")), &["declared twice"]);
    // a cell that does not exist: located at the key
    refused_at(
        &with("        - name: a\n          weights: {placebo-after: 1, placebo-before: -1}\n"),
        (18, 21),
        &[
            "`placebo-after` is not a cell of the design",
            "placebo-before, placebo-during, naltrexone-before, naltrexone-during",
        ],
    );
}

#[test]
fn receptor_options_are_typed_and_located() {
    let step = |nulls: &str| {
        GOOD.to_string()
            + "  - id: receptors\n    op: receptor-correlation\n    inputs:\n      statmaps: {step: group, output: statmaps}\n      cbf: {step: cbf, output: cbf-template}\n    params:\n      level: voxel\n      nulls: "
            + nulls
            + "\n"
    };
    let w = Workflow::parse(&step("[signflip, variogram]"), "good.yaml").unwrap();
    let Op::ReceptorCorrelation(p) = &w.steps[2].params.value else {
        panic!("receptor-correlation params")
    };
    let mut opts = cbflow_pipeline::ReceptorOptions::new(
        "bids".into(),
        "out".into(),
        cbflow_pipeline::Template::phantom(),
        "res".into(),
    );
    p.apply(&mut opts);
    assert_eq!(opts.level, cbflow_pipeline::ReceptorLevel::Voxel);
    assert_eq!(
        opts.nulls,
        [
            cbflow_pipeline::ReceptorNull::SignFlip,
            cbflow_pipeline::ReceptorNull::Variogram
        ]
    );
    // a null model that does not exist: located at its value, the choices named
    let (l, c, m) = error_at(&step("[signflip, spin]"));
    assert_eq!(l, 23, "{m}");
    assert!(c >= 25, "column {c}: {m}");
    assert!(m.contains("spin") && m.contains("variogram"), "{m}");
}

#[test]
fn rois_are_declared_and_checked() {
    // GOOD's line 9 is the asl-cbf step's `template: phantom`
    let with = |rois: &str| edit(9, &format!("      template: phantom\n      rois: {rois}"));
    // the group step then names the regions it tests
    let w = Workflow::parse(
        &(with("[{name: ACC, labels: [151, 152, 153, 154, 155, 156]}]")
            + "      rois: [ACC]\n      baseline-roi: ACC\n"),
        "good.yaml",
    )
    .unwrap();
    let Op::AslCbf(p) = &w.steps[0].params.value else {
        panic!("asl-cbf params")
    };
    assert_eq!(
        p.regions(),
        Some(vec![cbflow_pipeline::Region::new(
            "ACC",
            vec![151, 152, 153, 154, 155, 156]
        )])
    );
    for (rois, needle) in [
        ("[{name: ACC sub, labels: [151]}]", "letters, digits"),
        ("[{name: global, labels: [151]}]", "added by cbflow"),
        ("[{name: a, labels: []}]", "one or more atlas labels"),
        (
            "[{name: a, labels: [1]}, {name: a, labels: [2]}]",
            "declared twice",
        ),
    ] {
        refused_at(&with(rois), (9, 7), &[needle]);
    }
    // a key a region does not have: located at the key
    refused_on_line(
        &with("[{name: a, label: [1]}]"),
        10,
        &["unknown field `label`"],
    );
}

#[test]
fn covariates_are_declared_and_checked() {
    let with = |covs: &str| with_group_param("covariates", covs);
    let p = crossover_params(&with("[global-cbf, age, sex]"));
    assert_eq!(
        p.group_covariates(),
        [
            cbflow_pipeline::GroupCovariate::GlobalCbf,
            cbflow_pipeline::GroupCovariate::Participant("age".into()),
            cbflow_pipeline::GroupCovariate::Participant("sex".into()),
        ]
    );
    // none by default, as in the built-in workflow
    let p = crossover_params(GOOD);
    assert!(p.covariates.is_empty());
    // a name twice, and the subject column: located at the step's params
    for (covs, needle) in [
        ("[age, age]", "covariates: covariate age is listed twice"),
        ("[participant_id]", "participant_id is the subject"),
    ] {
        refused_at(&with(covs), (15, 7), &[needle]);
    }
    // not a list of names
    refused_on_line(&with("{age: 1}"), 16, &[]);
}

#[test]
fn group_regions_are_regions_of_the_participant_step() {
    let with = |params: &str| GOOD.to_string() + params;
    // the participant step's default regions: the ACC subdivisions
    Workflow::parse(&with("      rois: [ACC_sub_L, ACC_pre]\n"), "good.yaml").unwrap();
    for (params, needle) in [
        (
            "      rois: [ACC_sub, Insula_L]\n",
            "rois: Insula_L is not a region of the participant level",
        ),
        (
            "      baseline-roi: Insula_L\n",
            "baseline-roi: Insula_L is not a region of the participant level",
        ),
        ("      rois: [ACC_sub, global]\n", "global is always added"),
        ("      rois: [ACC_sub, ACC_sub]\n", "listed twice"),
    ] {
        refused_at(&with(params), (15, 7), &[needle]);
    }
    // a region the participant step declares
    let text = edit(
        9,
        "      template: phantom\n      rois: [{name: ACC, labels: [151, 152, 153, 154, 155, 156]}]",
    ) + "      rois: [ACC]\n      baseline-roi: ACC\n";
    Workflow::parse(&text, "good.yaml").unwrap();
    refused_with(
        &(text.replace("rois: [ACC]\n", "rois: [ACC_sub]\n")),
        &["its regions: ACC, grey_matter, global"],
    );
}

#[test]
fn tfce_settings_are_declared_and_checked() {
    let with = |tfce: &str| with_group_param("tfce", tfce);
    let p = crossover_params(&with("{e: 0.6, h: 1.5, connectivity: 6, dh: 0.1}"));
    assert_eq!(
        p.tfce.params(),
        cbflow_pipeline::TfceParams {
            e: 0.6,
            h: 1.5,
            step: cbflow_pipeline::TfceStep::Fixed(0.1),
            connectivity: cbflow_pipeline::Connectivity::Faces6,
        }
    );
    // unset: Smith & Nichols' E = 0.5, H = 2, 26-connectivity, dh = max |t| / 100
    let p = crossover_params(GOOD);
    assert_eq!(p.tfce.params(), cbflow_pipeline::TfceParams::default());
    for (tfce, needle) in [
        ("{connectivity: 8}", "connectivity 8 must be 6, 18 or 26"),
        ("{e: 0}", "tfce: e: 0 is out of range"),
        ("{dh: -1}", "tfce: dh"),
    ] {
        refused_at(&with(tfce), (15, 7), &[needle]);
    }
    refused_on_line(&with("{height: 2}"), 16, &["unknown field `height`"]);
}

#[test]
fn correlation_cis_are_declared_and_checked() {
    let with = |params: &str| GOOD.to_string() + params;
    let p = crossover_params(&with(
        "      correlation-ci: bootstrap\n      bootstrap-samples: 2000\n",
    ));
    assert_eq!(
        p.correlation_ci(),
        cbflow_pipeline::CorrelationCi::Bootstrap { samples: 2000 }
    );
    let p = crossover_params(GOOD);
    assert_eq!(p.correlation_ci(), cbflow_pipeline::CorrelationCi::FisherZ);
    refused_on_line(
        &with("      correlation-ci: jackknife\n"),
        16,
        &["jackknife", "bootstrap"],
    );
    refused_at(
        &with("      bootstrap-samples: 5\n"),
        (15, 7),
        &["bootstrap-samples: 5 must be 100 to 1000000"],
    );
}

/// The design names its levels and drug: the default contrasts and the cells of the weights
/// follow them; the study's cell names are then refused at their key; the older keys
/// `placebo:` / `naltrexone:` still read as `control` / `active`.
#[test]
fn the_design_names_the_cells_and_the_default_contrasts() {
    let design = "      design: {control: saline, active: naloxone, drug: remifentanil}\n";
    let p = crossover_params(&(GOOD.to_string() + design));
    let names: Vec<String> = p.group_contrasts().into_iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "remifentanilUnderSaline",
            "remifentanilUnderNaloxone",
            "remifentanilPooled",
            "interaction"
        ]
    );
    assert_eq!(
        p.design.study_design().cells(),
        [
            "saline-before",
            "saline-during",
            "naloxone-before",
            "naloxone-during"
        ]
    );
    // a declared contrast in the design's cells
    let own = "      contrasts:\n        - name: naloxoneBaseline\n          weights: {naloxone-before: 1, saline-before: -1}\n";
    let p = crossover_params(&(GOOD.to_string() + design + own));
    assert_eq!(
        p.group_contrasts()[0].contrast.weights(),
        [-1.0, 0.0, 1.0, 0.0]
    );
    // the study's cells are not this design's: refused at the key
    let study = "      contrasts:\n        - name: a\n          weights: {saline-before: -1, placebo-during: 1}\n";
    refused_at(
        &(GOOD.to_string() + design + study),
        (19, 40),
        &[
            "`placebo-during` is not a cell of the design",
            "saline-before, saline-during, naloxone-before, naloxone-during",
        ],
    );
    // names that cannot name cells and contrasts, or one level twice
    refused_with(
        &(GOOD.to_string() + "      design: {active: nal trexone}\n"),
        &["design: active \"nal trexone\""],
    );
    refused_with(
        &(GOOD.to_string() + "      design: {control: a, active: a}\n"),
        &["control and active are both \"a\""],
    );
    // the keys of earlier workflows
    let older = "      design: {placebo: PLA, naltrexone: NTX}\n";
    let p = crossover_params(&(GOOD.to_string() + older));
    assert_eq!(
        (p.design.control.as_str(), p.design.active.as_str()),
        ("PLA", "NTX")
    );
    assert_eq!(p.group_contrasts()[0].name, "ketamineUnderPLA");
}

#[test]
fn the_report_jobs_the_plan_adds_cannot_be_declared() {
    // their step name
    let text = GOOD.replacen("  - id: group", "  - id: report", 1);
    refused_at(&text, (10, 9), &["step id `report`"]);
    // their operations
    for op in ["participant-report", "group-report"] {
        let text = GOOD.replacen("op: asl-cbf", &format!("op: {op}"), 1);
        refused_on_line(&text, 5, &[op]);
    }
}

/// The phenotype scores of the brain–behaviour correlations: the study's by default, another
/// study's tables and columns when declared, `null` for none; a misspelt key is located and a
/// table name that is no file name is refused naming the field.
#[test]
fn brain_behaviour_scores_are_declared_and_checked() {
    let default = crossover_params(GOOD).brain_behaviour.scores();
    assert_eq!(default, cbflow_pipeline::BehaviourScores::default());
    let declared = crossover_params(&with_group_param(
        "brain-behaviour",
        "{session-scores: {table: ratings, columns: [\"anx_*\", vas]}, response: null}",
    ))
    .brain_behaviour
    .scores();
    let s = declared.session_scores.unwrap();
    assert_eq!(
        (s.table.as_str(), s.columns),
        ("ratings", vec!["anx_*".to_string(), "vas".into()])
    );
    assert!(declared.response.is_none());
    let text = with_group_param(
        "brain-behaviour",
        "{response: {table: mood, scales: [ham], baseline: pre, folow-up: wk6}}",
    );
    refused_on_line(&text, 16, &["folow-up", "follow-up"]);
    refused_with(
        &with_group_param(
            "brain-behaviour",
            "{session-scores: {table: \"../x\", columns: [a]}}",
        ),
        &["brain-behaviour: session-scores: table \"../x\" is not a phenotype table name"],
    );
}
