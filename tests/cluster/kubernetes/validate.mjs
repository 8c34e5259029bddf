// Validates Kubernetes manifests against the API's OpenAPI schemas that kubernetes-models
// carries (types, required fields, enums, formats), offline: node validate.mjs FILE...
// Prints one line per document; exits 1 if any document is invalid or of a kind it lacks.
import { readFileSync } from "node:fs";
import yaml from "js-yaml";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { Service } from "kubernetes-models/v1/Service";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";

const models = {
  "apps/v1 Deployment": Deployment,
  "v1 Service": Service,
  "policy/v1 PodDisruptionBudget": PodDisruptionBudget,
};
let invalid = 0;
for (const file of process.argv.slice(2)) {
  for (const document of yaml.loadAll(readFileSync(file, "utf8"))) {
    const kind = `${document.apiVersion} ${document.kind}`;
    const Model = models[kind];
    if (!Model) {
      invalid++;
      console.log(`${file}: ${kind}: no schema here for this kind`);
      continue;
    }
    try {
      new Model(document).validate();
      console.log(`${file}: ${kind} ${document.metadata.name}: valid`);
    } catch (error) {
      invalid++;
      console.log(`${file}: ${kind}: invalid: ${error.message}`);
    }
  }
}
process.exit(invalid ? 1 : 0);
