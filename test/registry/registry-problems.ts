import { expect } from "vitest";
import { RegistryError, type Problem } from "../../src/errors.js";

/** Runs `load`, expects it to refuse the registry, and returns the problems it reported. */
export function registryProblems(load: () => unknown): readonly Problem[] {
  let caught: unknown;
  try {
    load();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(RegistryError);
  const error = caught as RegistryError;
  expect(error.code).toBe("REGISTRY_INVALID");
  expect(error.problems.length).toBeGreaterThan(0);
  return error.problems;
}
