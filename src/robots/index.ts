/** Robot accounts (issue 10 item 4): the folder's public surface. */
export * from "./robots.ts";
