"""Launch: configure a comparison, see what it will cost and what p* looks like, start it in the background.

The page builds a core.run_spec.LaunchSpec (the object `alkd run --config` and `alkd sweep` read) and launches the CLI
with it: one budget and one seed is `alkd run`, several budgets or seeds are `alkd sweep` (one group, in parallel)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.distill.common import INITS, LISTS, LOSSES, OPTIONS, RECIPES
from core.selection.alkdrec import max_min_policy
from dashboard import data, launching

st.title("Launch a comparison")
problems = st.container()   # what blocks the launch, filled once every setting below is read: seen first

frame = data.datasets()
names = list(frame["name"])
if not names:
    st.warning("No dataset fetched yet: run `alkd data fetch ml-100k` first.")
# Shareable launch links: /launch?dataset=ml-100k&methods=student,alkdrec&teacher=simulated&budget=50&seeds=0-4
qp = st.query_params
wanted = qp.get("dataset", "ml-100k")
default = names.index(wanted) if wanted in names else names.index("ml-100k") if "ml-100k" in names else 0
all_methods, teachers = data.method_options(), data.teacher_options()    # core's registries, read now
qp_methods = [m for m in qp.get("methods", "").split(",") if m in all_methods] or data.DEMO_METHODS
qp_teacher = qp.get("teacher") if qp.get("teacher") in teachers else "simulated"
qp_budgets = qp.get("budgets", qp.get("budget", ""))

left, right = st.columns([1, 1])
with left:
    dataset = st.selectbox("Dataset", names, index=default if names else None, key="dataset")
    backbone = st.selectbox("Student backbone", data.backbone_options(), key="backbone")
    methods = st.multiselect("Methods", all_methods, default=qp_methods, key="methods",
                             help=f"Baselines {'/'.join(data.baseline_options())} ignore the backbone and the teacher.")
    teacher = st.selectbox("Teacher", teachers, key="teacher", index=teachers.index(qp_teacher),
                           format_func=lambda t: "simulated (what-if stand-in, not an LLM)" if t == "simulated" else t)
    model = base_url = None
    if teacher in data.KEY_ENV:
        from core.teachers.providers import default_model
        # one widget per provider: a shared key would keep openai's model when switching to anthropic
        model = st.text_input("Model", value=default_model(teacher), key=f"model_{teacher}")
        base_url = st.text_input("Base URL (optional: an OpenAI-compatible local server)", value="",
                                 key=f"base_url_{teacher}") or None
        name, masked = data.key_status(teacher)
        if masked:
            st.caption(f"🔑 {name}: `{masked}` (from the environment or st.secrets; never stored)")
        else:
            st.caption(f"🔑 {name}: not set")
    hit_rate = None
    if teacher == "simulated":
        hit_rate = st.slider("Simulated hit rate (SIMULATED teacher: probability the true next item is in its top 25)",
                             0.0, 1.0, 0.53, 0.01, key="hit_rate")
with right:
    pool = data.pool_size(dataset) if dataset else None
    budgets_text = st.text_input("LLM budgets (sessions labelled per run; several, e.g. 25,50,100, sweep them)",
                                 value=qp_budgets or str(min(100, pool or 100)), key="budgets",
                                 help=(f"The pool has {pool} training sessions. " if pool else "")
                                 + "Several budgets or seeds start `alkd sweep`: every combination, in parallel.")
    use_cap = st.checkbox("Cap the spend in USD", value=False, key="use_cap",
                          disabled=teacher not in data.KEY_ENV)
    cap_cols = st.columns(2)
    usd_cap = cap_cols[0].number_input("USD cap per run", min_value=0.0, value=1.0, step=0.5, key="usd_cap",
                                       disabled=not use_cap or teacher not in data.KEY_ENV)
    launch_cap = cap_cols[1].number_input("USD cap for the whole launch", min_value=0.0, value=5.0, step=1.0,
                                          key="launch_usd_cap", disabled=not use_cap or teacher not in data.KEY_ENV,
                                          help="Every run of this launch together stops there (--launch-usd-cap).")
    st.markdown("**Category ratios** k_ef : k_si : k_in")
    c1, c2, c3 = st.columns(3)
    r_ef = c1.number_input("k_ef (effective)", min_value=0.0, value=1.0, step=1.0, key="r_ef")
    r_si = c2.number_input("k_si (similar)", min_value=0.0, value=5.0, step=1.0, key="r_si")
    r_in = c3.number_input("k_in (incorrect)", min_value=0.0, value=4.0, step=1.0, key="r_in")
    mu = st.number_input("mu (gain exponent)", min_value=0.0, value=10.0, step=1.0, key="mu")
    seeds = st.text_input("Seeds", value=qp.get("seeds", "0"), key="seeds", help="0-4 or 0,1,2 (several: a sweep)")
    mode = st.radio("Mode", ["paper", "authors-code"], horizontal=True, key="mode")
    group = st.text_input("Group name (optional)", value=qp.get("group", ""), key="group")
    tags = [t.strip() for t in st.text_input("Tags (comma separated)", value="", key="tags").split(",") if t.strip()]

st.markdown("**Distillation objective** (the same `--option` settings as the table below)")
o1, o2, o3, o4, o5 = st.columns(5)
recipe = o1.selectbox("Recipe", RECIPES, key="recipe", index=0 if mode == "paper" else 1,
                      help="joint: the student's own loss on all training data + λ × the distillation loss; "
                           "finetune: the distilled rows alone (the paper's recipe; the start may win model selection)")
init = o2.selectbox("Init", INITS, key="init", help=OPTIONS["init"][2])
loss = o3.selectbox("Loss", ["per method", *LOSSES], key="loss",
                    help="per method: TR → kd (joint) / bpr-top50 (finetune); LLM methods → listwise / pairwise")
lists = o4.selectbox("Lists", LISTS, key="lists", help="llm: as answered; in-candidates: the no-leak replay; "
                                                       "shuffled / teacher: controls")
lam = o5.number_input("λ", min_value=0.0, value=1.0, step=0.1, key="lambda",
                      help="weight of the distillation loss in the joint recipe (DLLM2Rec's default is 0.8)")
objective = {k: v for k, v, default in (("recipe", recipe, RECIPES[0] if mode == "paper" else RECIPES[1]),
                                         ("init", init, INITS[0]), ("loss", loss, "per method"),
                                         ("lists", lists, LISTS[0]), ("lambda", lam, 1.0)) if v != default}

with st.expander("Training settings (advanced)"):
    st.caption("Passed to `alkd run` as `--pretrain` (teacher/student pre-training; a change trains new checkpoints) "
               "and `--option` (the student's fine-tuning). Empty = the defaults.")
    a, b = st.columns(2)
    pretrain_text = a.text_area("Pre-training, KEY=VALUE per line", value="", key="pretrain",
                                placeholder="loss=ce\nbatch_size=256",
                                help=f"Defaults for {backbone}: {data.pretrain_defaults(backbone)}")
    options_text = b.text_area("Distillation, KEY=VALUE per line", value="", key="options",
                               placeholder="lr=1e-4\npatience=10")
    st.dataframe(data.option_table(), hide_index=True, height=220)
parse_errors = []
try:
    pretrain_settings = data.parse_settings(pretrain_text)
except ValueError as error:
    parse_errors.append(f"Pre-training settings: {error}.")
    pretrain_settings = {}
try:
    option_settings = data.parse_settings(options_text)
except ValueError as error:
    parse_errors.append(f"Distillation settings: {error}.")
    option_settings = {}

budgets = [int(b) if b.strip().isdigit() else b.strip() for b in budgets_text.split(",") if b.strip()]
fields = dict(dataset=dataset or "", backbone=backbone, methods=list(methods), teacher=teacher, model=model,
              base_url=base_url, budgets=budgets, ratios=(r_ef, r_si, r_in), mu=float(mu), seeds=seeds,
              hit_rate=hit_rate, mode=mode, group=group.strip() or None, tags=tags,
              options=objective | option_settings, pretrain=pretrain_settings)
if use_cap and teacher in data.KEY_ENV:
    fields |= dict(usd_cap=float(usd_cap), launch_usd_cap=float(launch_cap))
spec, errors, warnings = data.launch_problems(fields)
errors = parse_errors + errors
ratios = (r_ef, r_si, r_in)

st.subheader("Cost estimate")
estimate = data.estimate_usd(spec) if spec is not None else None
n_llm = data.n_llm_runs(spec) if spec is not None else 0
if teacher in data.KEY_ENV:
    if estimate is None:
        st.warning(f"No estimate: {model!r} has no price, or a setting above is invalid.")
    else:
        per_run, total = estimate
        cols = st.columns(3)
        cols[0].metric("Expected per labelled run", f"${per_run:,.4f}",
                       help="At most the USD cap when one is set; the dearest budget when there are several."
                       if use_cap else "The dearest budget when there are several.")
        cols[1].metric("Runs asking the LLM", f"{n_llm:,}")
        cols[2].metric("At most for this launch", f"${total:,.4f}",
                       help="Each run asking the LLM at its expected cost, each at most its USD cap, all at most the "
                            "launch's cap. Cached prompts are not paid twice.")
        if base_url:
            st.caption(f"Priced at the list price of {model!r}: a server you run yourself bills nothing.")
else:
    st.metric("Expected cost", "$0.00", help=f"The {teacher} teacher is free"
              + (" (SIMULATED)" if teacher == "simulated" else ""))

st.subheader("Selection policy p*")
if pool and sum(ratios) > 0 and mu > 0:
    policy = max_min_policy(pool, float(mu), ratios, mode=mode)
    r = policy.ratios
    st.caption(f"Normalised ratios: effective {r.effective:.2f}, similar {r.similar:.2f}, incorrect {r.incorrect:.2f}; "
               f"pool N = {pool}, k* = {policy.k_star}, support = {policy.support}, segment cut = {policy.cut}.")
    stride = max(1, pool // 4000)
    x = np.arange(1, pool + 1)[::stride]
    fig = go.Figure(go.Scatter(x=x, y=policy.probabilities[::stride], mode="lines", name="p*", fill="tozeroy"))
    # k* labelled at the top, the segment cut at the bottom: close together they no longer print over each other
    fig.add_vline(x=policy.k_star, line_dash="dash", line_color="crimson",
                  annotation_text=f"k* = {policy.k_star:,}", annotation_position="top left")
    if policy.cut:
        fig.add_vline(x=policy.cut, line_dash="dot", line_color="gray", annotation_text=f"cut = {policy.cut:,}",
                      annotation_position="bottom right")
    fig.update_layout(xaxis_title="position in the pool (1 = hardest, sorted by difficulty)",
                      yaxis_title="selection probability p*", height=320, margin=dict(t=30, b=40, l=50, r=20))
    st.plotly_chart(fig, key="pstar")
else:
    st.info("Pick a fetched dataset and non-zero ratios to see p*.")

st.subheader("Launch")
with problems:
    for error in errors:
        st.error(error)
    for warning in warnings:
        st.warning(warning)
if errors:
    st.caption(f"{len(errors)} problem(s), listed at the top of the page, block the launch.")
if spec is not None:
    st.code(data.shown_command(spec), language="bash")
    if not data.is_single(spec):
        st.caption(f"{spec.n_runs()} runs ({', '.join(spec.swept())} swept), all in one group; the launch file "
                   f"`{data.launch_file(spec)}` in the data folder:")
        st.code(spec.to_toml(), language="toml")
if st.button("Launch", type="primary", key="launch", disabled=bool(errors) or spec is None):
    launching.start(spec)
if "last_launch" in st.session_state:
    last = st.session_state["last_launch"]
    st.caption(f"Last launch: group {last['group']}, process {last['pid']}, log {last['log']}")
