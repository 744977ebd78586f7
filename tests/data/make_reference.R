#!/usr/bin/env Rscript
# Real single-arm data sets from R's metadat package as bayesreview study tables, with
# frequentist reference results from metafor's binomial-normal GLMM (rma.glmm, measure = "PLO").
#
# Run from anywhere:  Rscript tests/data/make_reference.R
# Writes, next to this script:
#   hannum2020.csv, pritz1997.csv, debruin2009.csv   study tables (study, modality, [group col], n, events)
#   metafor_reference.csv                             one row per data set x grouping x level
#   metafor_reference_versions.txt                    R and package versions used
# See README.md in this folder for the sources, the columns chosen and the decisions taken.

suppressPackageStartupMessages({
  library(metadat)
  library(metafor)
  library(lme4)
})

args <- commandArgs(trailingOnly = FALSE)
file_arg <- sub("^--file=", "", args[grep("^--file=", args)])
out_dir <- if (length(file_arg)) dirname(normalizePath(file_arg)) else getwd()

# ---- study tables ------------------------------------------------------------------------

# hannum2020: xi = COVID-19 positive patients with olfactory loss, ni = COVID-19 positive
# patients; grouping column `objectivity` (Objective / Subjective measurement of smell loss).
h <- dat.hannum2020
stopifnot(all(abs(100 * h$xi / h$ni - h$percentOlfactoryLoss) < 1e-6))
hannum <- data.frame(
  study = trimws(h$authorName),
  modality = "all",
  objectivity = h$objectivity,
  n = as.integer(h$ni),
  events = as.integer(h$xi)
)

# pritz1997: xi = patients who improved with hyperdynamic therapy, ni = patients treated.
p <- dat.pritz1997
pritz <- data.frame(
  study = trimws(p$authors),
  modality = "all",
  n = as.integer(p$ni),
  events = as.integer(p$xi)
)

# debruin2009: xi = standard-care patients with an undetectable viral load (the success the
# paper analyses), ni = patients in the standard-care group; mi = detectable (= ni - xi).
d <- dat.debruin2009
stopifnot(all(d$xi + d$mi == d$ni))
debruin <- data.frame(
  study = paste(trimws(d$author), d$year),
  year = as.integer(d$year),
  modality = "all",
  ethnicity = d$ethnicity,
  n = as.integer(d$ni),
  events = as.integer(d$xi)
)

tables <- list(hannum2020 = hannum, pritz1997 = pritz, debruin2009 = debruin)
grouping <- list(hannum2020 = "objectivity", pritz1997 = NA, debruin2009 = "ethnicity")
for (name in names(tables)) {
  tab <- tables[[name]]
  stopifnot(!anyDuplicated(tab$study), all(tab$events >= 0), all(tab$events <= tab$n))
  write.csv(tab, file.path(out_dir, paste0(name, ".csv")), row.names = FALSE)
}

# ---- metafor reference -------------------------------------------------------------------

# Binomial-normal population mean rate E[invlogit(mu + tau z)], z ~ N(0, 1).
mean_rate <- function(mu, tau) {
  if (tau == 0) return(plogis(mu))
  integrate(function(z) plogis(mu + tau * z) * dnorm(z), -Inf, Inf,
            rel.tol = 1e-10, abs.tol = 0)$value
}

reference_row <- function(name, by, level, tab) {
  res <- rma.glmm(measure = "PLO", xi = events, ni = n, data = tab, method = "ML")
  pred <- predict(res)  # prediction interval for a new study's logit rate
  mu <- as.numeric(res$beta)
  tau <- sqrt(res$tau2)
  # Profile-likelihood 95% CI of tau from lme4 (the same ML fit metafor wraps; nAGQ = 7).
  long <- data.frame(id = factor(seq_len(nrow(tab))), events = tab$events, n = tab$n)
  gm <- glmer(cbind(events, n - events) ~ 1 + (1 | id), data = long, family = binomial,
              nAGQ = 7)
  prof <- suppressWarnings(confint(gm, parm = ".sig01", method = "profile", quiet = TRUE))
  data.frame(
    dataset = name,
    by = by,
    group = level,
    studies = nrow(tab),
    patients = sum(tab$n),
    events = sum(tab$events),
    mu = mu,
    se = res$se,
    ci_lb = res$ci.lb,
    ci_ub = res$ci.ub,
    tau2 = res$tau2,
    tau = tau,
    tau_profile_lb = prof[1, 1],
    tau_profile_ub = prof[1, 2],
    median_rate = plogis(mu),
    median_rate_lb = plogis(res$ci.lb),
    median_rate_ub = plogis(res$ci.ub),
    pred_lb = plogis(pred$pi.lb),
    pred_ub = plogis(pred$pi.ub),
    mean_rate = mean_rate(mu, tau),
    lme4_mu = unname(fixef(gm)[1]),
    lme4_tau = unname(sqrt(VarCorr(gm)$id[1, 1])),
    method = "ML",
    nAGQ = 7
  )
}

rows <- list()
for (name in names(tables)) {
  tab <- tables[[name]]
  rows[[length(rows) + 1]] <- reference_row(name, "modality", "all", tab)
  col <- grouping[[name]]
  if (!is.na(col)) {
    for (level in sort(unique(tab[[col]]))) {
      rows[[length(rows) + 1]] <- reference_row(name, col, level, tab[tab[[col]] == level, ])
    }
  }
}
reference <- do.call(rbind, rows)
# metafor and lme4 fit the same likelihood: they must agree (a check on the reference itself).
stopifnot(all(abs(reference$mu - reference$lme4_mu) < 1e-3),
          all(abs(reference$tau - reference$lme4_tau) < 1e-3))
write.csv(reference, file.path(out_dir, "metafor_reference.csv"), row.names = FALSE)

versions <- c(
  paste("R", paste(R.version$major, R.version$minor, sep = ".")),
  paste("metafor", as.character(packageVersion("metafor"))),
  paste("metadat", as.character(packageVersion("metadat"))),
  paste("lme4", as.character(packageVersion("lme4"))),
  paste("generated", format(Sys.Date()))
)
writeLines(versions, file.path(out_dir, "metafor_reference_versions.txt"))
print(reference[, c("dataset", "group", "studies", "mu", "se", "tau", "tau_profile_lb",
                    "tau_profile_ub", "median_rate", "mean_rate")], digits = 4)
