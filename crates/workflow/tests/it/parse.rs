//! Parsing: the shipped workflows, the schema, and every kind of bad file with its position.

use cbflow_workflow::{
    CrossoverGroupParams, Error, Input, Op, OpKind, TailSpec, TemplateName, Workflow,
};

use crate::workflows_dir;

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

#[test]
fn good_text_parses() {
    Workflow::parse(GOOD, "good.yaml").unwrap();
}

#[test]
fn unknown_key_in_params_is_located() {
    let (l, c, m) = error_at(&edit(9, "      templat: phantom"));
    assert_eq!((l, c), (9, 7), "{m}");
    assert!(m.contains("unknown field `templat`"), "{m}");
}

#[test]
fn unknown_key_in_step_is_located() {
    let (l, c, m) = error_at(&edit(8, "    parms:"));
    assert_eq!((l, c), (8, 5), "{m}");
    assert!(m.contains("unknown field `parms`"), "{m}");
}

#[test]
fn unknown_top_level_key_is_located() {
    let (l, c, m) = error_at(&edit(2, "nmae: t"));
    assert_eq!((l, c), (2, 1), "{m}");
    assert!(m.contains("unknown field `nmae`"), "{m}");
}

#[test]
fn unknown_key_in_bids_query_is_located() {
    let (l, c, m) = error_at(&edit(7, "      asl: {bids: {datatype: perf, sufix: asl}}"));
    assert_eq!((l, c), (7, 36), "{m}");
    assert!(m.contains("unknown field `sufix`"), "{m}");
}

#[test]
fn wrong_type_is_located() {
    let (l, c, m) = error_at(&edit(15, "      permutations: many"));
    assert_eq!((l, c), (15, 21), "{m}");
    assert!(m.contains("invalid"), "{m}");
}

#[test]
fn yaml_1_1_boolean_is_rejected() {
    let text = GOOD.replace(
        "      template: phantom",
        "      template: phantom\n      realign: yes",
    );
    let (l, c, m) = error_at(&text);
    assert_eq!((l, c), (10, 16), "{m}");
}

#[test]
fn unknown_operation_is_located() {
    let (l, c, m) = error_at(&edit(5, "    op: asl-cfb"));
    assert_eq!((l, c), (5, 9), "{m}");
    assert!(m.contains("asl-cfb") && m.contains("asl-cbf"), "{m}");
}

#[test]
fn reading_an_output_nobody_makes_is_located() {
    let (l, c, m) = error_at(&edit(13, "      cbf: {step: cbf, output: cbf-tempalte}"));
    assert_eq!((l, c), (13, 32), "{m}");
    assert!(
        m.contains("cbf-tempalte") && m.contains("cbf-template"),
        "{m}"
    );
    // an output that exists only with a template
    let text = GOOD.replace("template: phantom", "template: none");
    let (l, c, m) = error_at(&text);
    assert_eq!((l, c), (13, 32), "{m}");
    assert!(m.contains("template other than `none`"), "{m}");
}

#[test]
fn reading_a_missing_step_is_located() {
    let (l, c, m) = error_at(&edit(13, "      cbf: {step: cfb, output: cbf-template}"));
    assert_eq!((l, c), (13, 19), "{m}");
    assert!(m.contains("`cfb`, which does not exist"), "{m}");
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
    let (l, c, m) = error_at(text);
    assert_eq!((l, c), (7, 19), "{m}");
    assert!(m.contains("cycle: a ← b ← a"), "{m}");
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
    let (l, c, m) = error_at(text);
    assert_eq!((l, c), (7, 19), "{m}");
    assert!(m.contains("cycle: a ← a"), "{m}");
}

#[test]
fn duplicate_ids_missing_inputs_and_ranges_are_located() {
    let (l, c, m) = error_at(&edit(10, "  - id: cbf"));
    assert_eq!((l, c), (10, 9), "{m}");
    assert!(m.contains("duplicate step id"), "{m}");
    // the group step without its input
    let text = GOOD.replace(
        "    inputs:\n      cbf: {step: cbf, output: cbf-template}\n",
        "",
    );
    let (l, c, m) = error_at(&text);
    assert_eq!((l, c), (10, 5), "{m}");
    assert!(m.contains("needs input `cbf`"), "{m}");
    // a parameter out of range: located at `params`
    let (l, c, m) = error_at(&edit(15, "      permutations: 0"));
    assert_eq!((l, c), (15, 7), "{m}");
    assert!(m.contains("permutations"), "{m}");
    // an input slot the operation does not have
    let (l, c, m) = error_at(&edit(
        7,
        "      asll: {bids: {datatype: perf, suffix: asl}}",
    ));
    assert_eq!((l, c), (7, 13), "{m}");
    assert!(m.contains("no input `asll`"), "{m}");
    // a version this build does not read
    let (l, c, m) = error_at(&edit(1, "version: 2"));
    assert_eq!((l, c), (1, 10), "{m}");
    assert!(m.contains("version 2"), "{m}");
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
    let (l, c, m) = error_at(&with(
        "        - name: during\n          weights: {placebo-during: 1}\n",
    ));
    assert_eq!((l, c), (15, 7), "{m}");
    assert!(
        m.contains("contrasts: contrast during") && m.contains("not 0"),
        "{m}"
    );
    // a name that cannot be a BIDS entity value
    let (_, _, m) = error_at(&with(
        "        - name: ket-pla\n          weights: {placebo-during: 1, placebo-before: -1}\n",
    ));
    assert!(m.contains("letters and digits"), "{m}");
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
    let (_, _, m) = error_at(&with(&format!("{one}{one}")));
    assert!(m.contains("declared twice"), "{m}");
    // a cell that does not exist: located at the key
    let (l, c, m) = error_at(&with(
        "        - name: a\n          weights: {placebo-after: 1, placebo-before: -1}\n",
    ));
    assert_eq!((l, c), (18, 21), "{m}");
    assert!(
        m.contains("`placebo-after` is not a cell of the design")
            && m.contains("placebo-before, placebo-during, naltrexone-before, naltrexone-during"),
        "{m}"
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
        let (l, c, m) = error_at(&with(rois));
        assert_eq!((l, c), (9, 7), "{rois}: {m}");
        assert!(m.contains(needle), "{rois}: {m}");
    }
    // a key a region does not have: located at the key
    let (l, _, m) = error_at(&with("[{name: a, label: [1]}]"));
    assert_eq!(l, 10, "{m}");
    assert!(m.contains("unknown field `label`"), "{m}");
}

#[test]
fn covariates_are_declared_and_checked() {
    let with = |covs: &str| GOOD.to_string() + "      covariates: " + covs + "\n";
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
        let (l, c, m) = error_at(&with(covs));
        assert_eq!((l, c), (15, 7), "{covs}: {m}");
        assert!(m.contains(needle), "{covs}: {m}");
    }
    // not a list of names
    let (l, _, m) = error_at(&with("{age: 1}"));
    assert_eq!(l, 16, "{m}");
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
        let (l, c, m) = error_at(&with(params));
        assert_eq!((l, c), (15, 7), "{params}: {m}");
        assert!(m.contains(needle), "{params}: {m}");
    }
    // a region the participant step declares
    let text = edit(
        9,
        "      template: phantom\n      rois: [{name: ACC, labels: [151, 152, 153, 154, 155, 156]}]",
    ) + "      rois: [ACC]\n      baseline-roi: ACC\n";
    Workflow::parse(&text, "good.yaml").unwrap();
    let (_, _, m) = error_at(&(text.replace("rois: [ACC]\n", "rois: [ACC_sub]\n")));
    assert!(m.contains("its regions: ACC, grey_matter, global"), "{m}");
}

#[test]
fn tfce_settings_are_declared_and_checked() {
    let with = |tfce: &str| GOOD.to_string() + "      tfce: " + tfce + "\n";
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
        let (l, c, m) = error_at(&with(tfce));
        assert_eq!((l, c), (15, 7), "{tfce}: {m}");
        assert!(m.contains(needle), "{tfce}: {m}");
    }
    let (l, _, m) = error_at(&with("{height: 2}"));
    assert_eq!(l, 16, "{m}");
    assert!(m.contains("unknown field `height`"), "{m}");
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
    let (l, _, m) = error_at(&with("      correlation-ci: jackknife\n"));
    assert_eq!(l, 16, "{m}");
    assert!(m.contains("jackknife") && m.contains("bootstrap"), "{m}");
    let (l, c, m) = error_at(&with("      bootstrap-samples: 5\n"));
    assert_eq!((l, c), (15, 7), "{m}");
    assert!(
        m.contains("bootstrap-samples: 5 must be 100 to 1000000"),
        "{m}"
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
    let (l, c, m) = error_at(&(GOOD.to_string() + design + study));
    assert_eq!((l, c), (19, 40), "{m}");
    assert!(
        m.contains("`placebo-during` is not a cell of the design")
            && m.contains("saline-before, saline-during, naloxone-before, naloxone-during"),
        "{m}"
    );
    // names that cannot name cells and contrasts, or one level twice
    let (_, _, m) = error_at(&(GOOD.to_string() + "      design: {active: nal trexone}\n"));
    assert!(m.contains("design: active \"nal trexone\""), "{m}");
    let (_, _, m) = error_at(&(GOOD.to_string() + "      design: {control: a, active: a}\n"));
    assert!(m.contains("control and active are both \"a\""), "{m}");
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
    let (l, c, m) = error_at(&text);
    assert_eq!((l, c), (10, 9), "{m}");
    assert!(m.contains("step id `report`"), "{m}");
    // their operations
    for op in ["participant-report", "group-report"] {
        let text = GOOD.replacen("op: asl-cbf", &format!("op: {op}"), 1);
        let (l, _, m) = error_at(&text);
        assert_eq!(l, 5, "{m}");
        assert!(m.contains(op), "{m}");
    }
}
