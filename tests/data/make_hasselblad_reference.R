library(metadat); library(lme4)
d <- dat.hasselblad1998
out <- data.frame(study = paste(d$authors, d$year), modality = d$trt, n = d$ni, events = d$xi)
stopifnot(length(unique(out$study)) == length(unique(d$study)))
write.csv(out, "/work/main/tests/data/hasselblad1998.csv", row.names = FALSE)
d$trt <- relevel(factor(d$trt), ref = "no_contact")
d$arm <- factor(seq_len(nrow(d)))
fit <- glmer(cbind(xi, ni - xi) ~ 0 + factor(study) + trt + (1 | arm), data = d, family = binomial, nAGQ = 1,
             control = glmerControl(optimizer = "bobyqa"))
co <- summary(fit)$coefficients
co <- co[grep("^trt", rownames(co)), ]
print(co)
s <- as.data.frame(VarCorr(fit))$sdcor
cat("arm sd", s, " tau = sqrt(2) * sd =", sqrt(2) * s, "\n")
res <- data.frame(treatment = sub("^trt", "", rownames(co)), log_or = co[, 1], se = co[, 2], tau = sqrt(2) * s)
write.csv(res, "/tmp/hasselblad_glmer.csv", row.names = FALSE)
cat(R.version.string, "lme4", as.character(packageVersion("lme4")), "metadat", as.character(packageVersion("metadat")), "\n")
library(metafor); library(metadat)
dat <- dat.hasselblad1998
dat <- to.wide(dat, study="study", grp="trt", ref="no_contact", grpvars=6:7)
dat <- escalc(measure="OR", ai=xi.1, n1i=ni.1, ci=xi.2, n2i=ni.2, data=dat)
calc.v <- function(x) {
  v <- matrix(1/(x$xi.2[1] + 1/2) + 1/(x$ni.2[1] - x$xi.2[1] + 1/2), nrow=nrow(x), ncol=nrow(x))
  diag(v) <- x$vi
  v
}
V <- bldiag(lapply(split(dat, dat$study), calc.v))
dat$ind_counseling <- ifelse(dat$trt.1 == "ind_counseling", 1, 0) - ifelse(dat$trt.2 == "ind_counseling", 1, 0)
dat$grp_counseling <- ifelse(dat$trt.1 == "grp_counseling", 1, 0) - ifelse(dat$trt.2 == "grp_counseling", 1, 0)
dat$self_help <- ifelse(dat$trt.1 == "self_help", 1, 0) - ifelse(dat$trt.2 == "self_help", 1, 0)
res <- rma.mv(yi, V, mods = ~ ind_counseling + grp_counseling + self_help - 1, random = ~ comp | study, rho=1/2, data=dat)
print(res)
res.ml <- rma.mv(yi, V, mods = ~ ind_counseling + grp_counseling + self_help - 1, random = ~ comp | study, rho=1/2, data=dat, method="ML")
cat("ML tau", sqrt(res.ml$tau2), "\n"); print(coef(res.ml))
out <- data.frame(treatment=names(coef(res)), log_or=coef(res), lower=res$ci.lb, upper=res$ci.ub, tau=sqrt(res$tau2))
write.csv(out, "/tmp/hasselblad_rma.csv", row.names=FALSE)
