/** The stylesheet is imported as text (`with { type: "text" }`) so the compiled binary embeds it. */
declare module "*.css" {
  const text: string;
  export default text;
}
