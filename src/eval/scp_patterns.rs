//! The statement -> phrase table of the report mapper ([`super::scp_map`]).
//!
//! One entry per PTB-XL SCP statement (all 71 of `scp_statements.csv`). Phrases are written
//! in the mapper's normalised form (lowercase, every non-alphanumeric character a space, so
//! `st-t` is `st t` and `qrs(t)` is `qrs t`). They come from the statement's `description`
//! and from the English phrasing of the reports: PTB-XL's own English reports ("st segments
//! are depressed in ...", "t waves are low or flat ...") and what the German/Swedish
//! translation (`train/data/phrases_de_en.tsv`) produces ("left anterior fascicular block.",
//! "p sinistrocardiale.", "qrs(t) abnormal.").
//!
//! Phrase syntax: words must start at a word boundary; the last word of a phrase may be a
//! prefix of a longer word (`infarct` matches `infarction`, `ischaemi` matches `ischaemia`
//! and `ischaemic`). ` * ` separates parts that must occur in this order in the same
//! sentence (`anterolateral * ischaemi`). `exclude` phrases are blanked out before this
//! statement's phrases are searched (so `incomplete right bundle branch block` does not
//! count as complete RBBB).

/// Phrases of one statement.
pub struct StatementPatterns {
    pub code: &'static str,
    pub phrases: &'static [&'static str],
    pub exclude: &'static [&'static str],
}

const fn p(
    code: &'static str,
    phrases: &'static [&'static str],
    exclude: &'static [&'static str],
) -> StatementPatterns {
    StatementPatterns {
        code,
        phrases,
        exclude,
    }
}

/// The table (order is irrelevant).
pub static TABLE: &[StatementPatterns] = &[
    // --- diagnostic (and diagnostic + form) ---
    p(
        "NDT",
        &[
            "non diagnostic t",
            "non specific t",
            "nonspecific t",
            "t wave flattening",
            "t waves are low",
            "t waves are flat",
            "t wave change",
            "t wave abnormality",
            "t abnormal",
        ],
        &["qrs t abnormal"],
    ),
    p(
        "NST_",
        &[
            "non specific st",
            "nonspecific st",
            "st t wave change",
            "st t change",
            "st t abnormal",
            "st changes",
            "st segment change",
            "st & t abnormal",
        ],
        &[],
    ),
    p("DIG", &["digitalis", "digoxin"], &[]),
    p(
        "LNGQT",
        &[
            "long qt",
            "prolonged qt",
            "qt prolongation",
            "qt interval is prolonged",
            "qt * prolonged",
        ],
        &[],
    ),
    p(
        "NORM",
        &["normal ecg", "normal resting ecg", "within normal limits"],
        &[],
    ),
    p(
        "IMI",
        &[
            "inferior myocardial infarct",
            "inferior infarct",
            "inferior wall infarct",
            "inferior * infarct",
        ],
        &[],
    ),
    p(
        "ASMI",
        &[
            "anteroseptal myocardial",
            "anteroseptal infarct",
            "anterior myocardial infarct",
            "anterior infarct",
            "anterior and inferior infarct",
            "septal infarct",
            "anteroseptal * infarct",
        ],
        &[],
    ),
    p(
        "LVH",
        &[
            "left ventricular hypertrophy",
            "lv hypertrophy",
            "lvh",
            "left hypertrophy",
        ],
        &[],
    ),
    p(
        "LAFB",
        &[
            "left anterior fascicular block",
            "left anterior hemiblock",
            "lahb",
            "anterior fascicular block",
        ],
        &[],
    ),
    p(
        "ISC_",
        &[
            "myocardial ischaemi",
            "ischaemic heart disease",
            "signs of ischaemi",
            "ischaemi",
            "ischemi",
        ],
        &[],
    ),
    p(
        "IRBBB",
        &[
            "incomplete right bundle branch block",
            "incomplete rbbb",
            "partial right bundle branch block",
        ],
        &[],
    ),
    p(
        "1AVB",
        &[
            "first degree av block",
            "1st degree av block",
            "first degree atrioventricular block",
            "1 degree atrioventricular block",
            "av block i",
            "prolonged pr interval",
        ],
        &[],
    ),
    p(
        "IVCD",
        &[
            "intraventricular conduction disturbance",
            "intraventricular conduction delay",
            "intraventricular conduction disorder",
            "intraventricular block",
            "intraventricular delay",
            "intraventricular conduction",
        ],
        &[],
    ),
    p(
        "ISCAL",
        &["anterolateral * ischaemi", "ischaemi * anterolateral"],
        &[],
    ),
    p(
        "CRBBB",
        &[
            "complete right bundle branch block",
            "right bundle branch block",
            "rbbb",
        ],
        &[
            "incomplete right bundle branch block",
            "incomplete rbbb",
            "partial right bundle branch block",
        ],
    ),
    p(
        "CLBBB",
        &[
            "complete left bundle branch block",
            "left bundle branch block",
            "lbbb",
        ],
        &["incomplete left bundle branch block", "incomplete lbbb"],
    ),
    p(
        "ILMI",
        &[
            "inferolateral myocardial infarct",
            "inferolateral infarct",
            "inferolateral * infarct",
            "infero lateral * infarct",
        ],
        &[],
    ),
    p(
        "LAO/LAE",
        &[
            "left atrial enlargement",
            "left atrial overload",
            "left atrial abnormality",
            "p sinistrocardiale",
            "p mitrale",
        ],
        &[],
    ),
    p(
        "AMI",
        &[
            "anterior wall infarct",
            "anterior wall aneurysm",
            "extensive anterior",
        ],
        &[],
    ),
    p(
        "ALMI",
        &[
            "anterolateral myocardial infarct",
            "anterolateral * infarct",
        ],
        &[],
    ),
    p(
        "ISCIN",
        &[
            "inferior * ischaemi",
            "ischaemi * inferior",
            "inferior ischemi",
        ],
        &[],
    ),
    p(
        "INJAS",
        &[
            "anteroseptal subendocardial",
            "subendocardial * anteroseptal",
            "anterior subendocardial",
        ],
        &[],
    ),
    p(
        "LMI",
        &[
            "lateral myocardial infarct",
            "lateral infarct",
            "lateral wall infarct",
        ],
        &["inferolateral", "anterolateral", "posterolateral"],
    ),
    p(
        "ISCIL",
        &["inferolateral * ischaemi", "ischaemi * inferolateral"],
        &[],
    ),
    p(
        "LPFB",
        &[
            "left posterior fascicular block",
            "left posterior hemiblock",
            "lphb",
        ],
        &[],
    ),
    p(
        "ISCAS",
        &["anteroseptal * ischaemi", "ischaemi * anteroseptal"],
        &[],
    ),
    p(
        "INJAL",
        &[
            "anterolateral subendocardial",
            "subendocardial * anterolateral",
        ],
        &[],
    ),
    p(
        "ISCLA",
        &[
            "lateral * ischaemi",
            "ischaemi * lateral",
            "high lateral ischaemi",
        ],
        &["inferolateral", "anterolateral", "posterolateral"],
    ),
    p(
        "RVH",
        &["right ventricular hypertrophy", "rv hypertrophy", "rvh"],
        &[],
    ),
    p("ANEUR", &["aneurysm"], &[]),
    p(
        "RAO/RAE",
        &[
            "right atrial enlargement",
            "right atrial overload",
            "p dextrocardiale",
            "p pulmonale",
        ],
        &[],
    ),
    p(
        "EL",
        &[
            "electrolyte",
            "drug effect",
            "hyperkalaemi",
            "hypokalaemi",
            "hypercalcaemi",
        ],
        &[],
    ),
    p(
        "WPW",
        &[
            "wolff parkinson white",
            "wolf parkinson white",
            "wpw",
            "pre excitation",
            "delta wave",
        ],
        &[],
    ),
    p(
        "ILBBB",
        &["incomplete left bundle branch block", "incomplete lbbb"],
        &[],
    ),
    p(
        "IPLMI",
        &[
            "inferoposterolateral",
            "infero posterolateral",
            "infero postero lateral",
        ],
        &[],
    ),
    p(
        "ISCAN",
        &["anterior * ischaemi", "ischaemi * anterior"],
        &[],
    ),
    p(
        "IPMI",
        &["inferoposterior", "infero posterior"],
        &["inferoposterolateral", "infero posterolateral"],
    ),
    p("SEHYP", &["septal hypertrophy"], &[]),
    p(
        "INJIN",
        &["inferior subendocardial", "subendocardial * inferior"],
        &[],
    ),
    p(
        "INJLA",
        &["lateral subendocardial", "subendocardial * lateral"],
        &["inferolateral", "anterolateral"],
    ),
    p(
        "PMI",
        &[
            "posterior myocardial infarct",
            "posterior infarct",
            "posterior wall infarct",
            "true posterior",
        ],
        &[],
    ),
    p(
        "3AVB",
        &[
            "third degree av block",
            "3rd degree av block",
            "complete heart block",
            "complete av block",
            "third degree atrioventricular block",
        ],
        &[],
    ),
    p(
        "INJIL",
        &[
            "inferolateral subendocardial",
            "infero lateral subendocardial",
            "subendocardial * inferolateral",
        ],
        &[],
    ),
    p(
        "2AVB",
        &[
            "second degree av block",
            "2nd degree av block",
            "wenckebach",
            "mobitz",
            "2 1 av block",
            "second degree atrioventricular block",
        ],
        &[],
    ),
    // --- form ---
    p(
        "ABQRS",
        &["qrs t abnormal", "abnormal qrs", "qrs abnormal"],
        &[],
    ),
    p(
        "PVC",
        &[
            "premature ventricular",
            "ventricular premature",
            "ventricular extrasystole",
            "ventricular ectopic",
            "pvc",
            "vpb",
        ],
        &[],
    ),
    p(
        "STD_",
        &[
            "st depression",
            "st segment depression",
            "st segments are depressed",
            "st segments are slightly depressed",
            "st * depress",
            "st lowering",
        ],
        &[],
    ),
    p(
        "VCLVH",
        &[
            "voltage criteria",
            "voltages are high",
            "voltages suggest",
            "amplitude criteria",
            "high * voltage * lvh",
        ],
        &[],
    ),
    p("QWAVE", &["q wave", "qs complex", "q in"], &[]),
    p(
        "LOWT",
        &[
            "low amplitude t",
            "t waves are low",
            "low t",
            "t waves * low",
            "flat t",
            "t flat",
            "t wave flattening",
            "t waves are flat",
        ],
        &[],
    ),
    p(
        "NT_",
        &[
            "non specific t",
            "nonspecific t",
            "t wave change",
            "t wave flattening",
        ],
        &[],
    ),
    p(
        "PAC",
        &[
            "premature atrial",
            "atrial premature",
            "atrial extrasystole",
            "supraventricular extrasystole",
            "pac",
            "apb",
        ],
        &[],
    ),
    p(
        "LPR",
        &[
            "prolonged pr",
            "pr interval is prolonged",
            "pr prolongation",
        ],
        &[],
    ),
    p(
        "INVT",
        &[
            "t waves are inverted",
            "t wave inversion",
            "inverted t",
            "t inversion",
            "negative t",
            "t negative",
            "t waves * inverted",
            "terminally negative",
        ],
        &[],
    ),
    p(
        "LVOLT",
        &[
            "low voltage",
            "low qrs voltage",
            "low limb lead voltage",
            "peripheral low voltage",
        ],
        &[],
    ),
    p(
        "HVOLT",
        &["high voltage", "high qrs voltage", "high v lead voltage"],
        &[],
    ),
    p(
        "TAB_",
        &[
            "abnormal t wave",
            "t waves are abnormal",
            "t wave abnormalities",
        ],
        &["qrs t abnormal"],
    ),
    p(
        "STE_",
        &[
            "st elevation",
            "st segment elevation",
            "st segments are elevated",
            "st segments are slightly elevated",
            "st * elevat",
        ],
        &[],
    ),
    p(
        "PRC(S)",
        &[
            "premature complex",
            "premature beat",
            "extrasystole",
            "ectopic beat",
        ],
        &[
            "ventricular extrasystole",
            "supraventricular extrasystole",
            "atrial extrasystole",
            "ventricular premature beat",
            "atrial premature beat",
            "ventricular ectopic beat",
        ],
    ),
    // --- rhythm ---
    p("SR", &["sinus rhythm"], &[]),
    p(
        "AFIB",
        &["atrial fibrillation", "afib", "absolute arrhythmia"],
        &[],
    ),
    p("STACH", &["sinus tachycardia"], &[]),
    p(
        "SARRH",
        &[
            "sinus arrhythmia",
            "sinus arhythmia",
            "respiratory arrhythmia",
            "respiratory sinus arrhythmia",
        ],
        &[],
    ),
    p(
        "SBRAD",
        &["sinus bradycardia", "sinus bradyarrhythmia"],
        &[],
    ),
    p(
        "PACE",
        &["pacemaker", "paced rhythm", "pacing"],
        &["wandering pacemaker"],
    ),
    p("SVARR", &["supraventricular arrhythmia"], &[]),
    p("BIGU", &["bigeminy", "bigeminal"], &[]),
    p(
        "AFLT",
        &["atrial flutter", "flutter"],
        &["fibrillation flutter", "fibrillation or flutter"],
    ),
    p(
        "SVTAC",
        &["supraventricular tachycardia", "atrial tachycardia"],
        &[],
    ),
    p(
        "PSVT",
        &["paroxysmal supraventricular tachycardia", "paroxysmal"],
        &[],
    ),
    p("TRIGU", &["trigeminy", "trigeminal"], &[]),
];
