import { describe, expect, it } from "bun:test";
import { BadRequest, Forbidden } from "../../src/errors.ts";
import { errorField, formFields, readForm } from "../../src/http/pages/forms.ts";

describe("formFields", () => {
  it("returns single and repeated fields, dropping csrf", () => {
    const form = new URLSearchParams("name=a&scopes=pull&scopes=push&csrf=x");
    expect(formFields(form, ["name"], ["scopes"])).toEqual({
      one: { name: "a" },
      many: { scopes: ["pull", "push"] },
    });
  });
  const refused: [string, string, string][] = [
    ["an unknown field", "name=a&admin=1", "admin: unknown field"],
    ["a single field twice", "name=a&name=b", "name: given more than once"],
    ["a very long unknown field name, cut", `${"x".repeat(1000)}=1`, `${"x".repeat(64)}: unknown field`],
  ];
  for (const [name, body, message] of refused)
    it(`refuses ${name}`, () => {
      expect(() => formFields(new URLSearchParams(body), ["name"])).toThrow(message);
    });
});

describe("errorField", () => {
  const fields = { name: "name", password: "password", expires_at: "expires" };
  const cases: [string, Error & { status: number }, string][] = [
    ["the API's validation path", new BadRequest("body.expires_at: not an RFC 3339 time"), "expires"],
    ["a path of a nested item", new BadRequest("body.name: expected string"), "name"],
    ["a domain message naming the field", new BadRequest('invalid user name "X": ...'), "name"],
    ["a password rule", new BadRequest("the password must have at least 8 characters"), "password"],
    ["anything else: the fallback", new Forbidden("only an administrator can manage users"), "name"],
  ];
  for (const [name, error, field] of cases)
    it(`finds the field from ${name}`, () =>
      expect(errorField(error as BadRequest, fields, "name")).toBe(field));
});

describe("readForm", () => {
  const post = (body: string, headers: Record<string, string>) =>
    new Request("http://localhost/x", { method: "POST", body, headers });
  it("parses a urlencoded body", async () => {
    const form = await readForm(
      post("a=1&b=%3Cx%3E", { "content-type": "application/x-www-form-urlencoded" }),
    );
    expect(form.get("b")).toBe("<x>");
  });
  it("refuses other content types (415) and bodies over the limit (413)", async () => {
    await expect(readForm(post("{}", { "content-type": "application/json" }))).rejects.toThrow(
      "x-www-form-urlencoded",
    );
    await expect(
      readForm(post("a=".padEnd(70_000, "x"), { "content-type": "application/x-www-form-urlencoded" })),
    ).rejects.toThrow("larger than");
    await expect(
      readForm(
        post("a=1", { "content-type": "application/x-www-form-urlencoded", "content-length": "99999999999" }),
      ),
    ).rejects.toThrow("larger than");
  });
});
